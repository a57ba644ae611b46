import { methodNotAllowed } from "$lib/server/api.ts";

export { getStats as GET } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("GET");
