import { afterAll } from "vitest";

/**
 * For a test file (call it at its top level): a loader of the API module serving the read models at `path` (data
 * dir `dir`). The server reads its configuration from the environment once, at import; the variables are removed
 * after the file's tests.
 */
export function apiOver(dir: string, path: string): () => Promise<typeof import("./api.ts")> {
  afterAll(() => {
    delete process.env.TROUPE_PROJECTOR_DB;
    delete process.env.TROUPE_DATA_DIR;
  });
  return () => {
    process.env.TROUPE_PROJECTOR_DB = path;
    process.env.TROUPE_DATA_DIR = dir;
    return import("./api.ts");
  };
}
