export { getArtifact as GET, methodNotAllowed as fallback } from "$lib/server/api.ts";
