import { methodNotAllowed } from "$lib/server/api.ts";

export { cancelJob as POST } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("POST");
