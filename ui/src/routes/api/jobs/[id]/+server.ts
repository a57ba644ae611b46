import { methodNotAllowed } from "$lib/server/api.ts";

export { getJob as GET } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("GET");
