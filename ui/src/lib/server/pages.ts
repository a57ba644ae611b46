import { error } from "@sveltejs/kit";
import { ApiError } from "./http.ts";

/** Runs a page load; an ApiError becomes the page's error (status + message) instead of a 500. */
export function pageLoad<T>(run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (e instanceof ApiError) error(e.status, { message: e.message, code: e.code });
    throw e;
  }
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
