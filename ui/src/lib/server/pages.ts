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
