import { error } from "@sveltejs/kit";
import { context } from "./context.ts";
import { ApiError } from "./http.ts";
import type { Reads } from "./reads.ts";

/** Runs a page load; an ApiError becomes the page's error (status + message) instead of a 500. */
export function pageLoad<T>(run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (e instanceof ApiError) error(e.status, { message: e.message, code: e.code });
    throw e;
  }
}

/**
 * A page load from the read models: `read` runs on one snapshot (pageLoad's errors), and the data gets `readAt`, the
 * projector's checkpoints in that snapshot (null before its first batch, or without a file). A page's catch-up that
 * finds the streams' heads at or below them has nothing to reload (`dataHolds`): every in-app navigation loaded
 * its page twice, SvelteKit's load and then the catch-up's.
 */
export function readModelsLoad<T extends object>(read: (reads: Reads) => T): T & { readAt: Record<string, number> | null } {
  return pageLoad(() => {
    const reads = context().reads();
    return reads.snapshot(() => ({ ...read(reads), readAt: reads.projector()?.checkpoints ?? null }));
  });
}

/** What a read gives within `ms`, or null when it fails or takes longer: a page is not held up by a slow or absent NATS. */
export async function within<T>(read: () => Promise<T>, ms: number): Promise<T | null> {
  return answeredWithin(read, ms).catch(() => null);
}

/** `read`'s answer, or a rejection "no answer within <ms> ms" when it takes longer. */
export async function answeredWithin<T>(read: () => Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([read(), new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
