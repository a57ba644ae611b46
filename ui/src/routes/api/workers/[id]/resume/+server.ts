export { resumeWorker as POST, methodNotAllowed as fallback } from "$lib/server/api.ts";
