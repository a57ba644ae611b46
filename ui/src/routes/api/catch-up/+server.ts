import { methodNotAllowed } from "$lib/server/api.ts";

export { getCatchUp as GET } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("GET");
