import { methodNotAllowed } from "$lib/server/api.ts";

export { getWorker as GET } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("GET");
