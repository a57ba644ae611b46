import { methodNotAllowed } from "$lib/server/api.ts";

export { listWorkers as GET } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("GET");
