export { listJobs as GET, postJob as POST, methodNotAllowed as fallback } from "$lib/server/api.ts";
