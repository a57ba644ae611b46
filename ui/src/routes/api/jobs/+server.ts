import { methodNotAllowed } from "$lib/server/api.ts";

export { listJobs as GET, postJob as POST } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("GET", "POST");
