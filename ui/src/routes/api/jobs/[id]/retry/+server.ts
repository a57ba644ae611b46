import { methodNotAllowed } from "$lib/server/api.ts";

export { retryJob as POST } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("POST");
