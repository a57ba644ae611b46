export { notFound as fallback } from "$lib/server/api.ts";
