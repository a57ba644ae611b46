import { methodNotAllowed } from "$lib/server/api.ts";

export { drainWorker as POST } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("POST");
