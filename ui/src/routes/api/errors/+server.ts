import { methodNotAllowed } from "$lib/server/api.ts";

export { getErrors as GET } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("GET");
