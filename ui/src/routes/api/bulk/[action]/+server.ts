import { methodNotAllowed } from "$lib/server/api.ts";

export { bulkJobs as POST } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("POST");
