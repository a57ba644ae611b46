import { methodNotAllowed } from "$lib/server/api.ts";

export { resumeWorker as POST } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("POST");
