import { methodNotAllowed } from "$lib/server/api.ts";

export { getArtifact as GET } from "$lib/server/api.ts";
export const fallback = methodNotAllowed("GET");
