import { redirect, type Handle } from "@sveltejs/kit";
import { presentedToken, tokenMatches, TOKEN_COOKIE } from "$lib/server/auth.ts";
import { context } from "$lib/server/context.ts";
import { ApiError, errorResponse } from "$lib/server/http.ts";

/** The token rule: with TROUPE_UI_TOKEN set, every page and API call needs it (cookie or Bearer). */
export const handle: Handle = async ({ event, resolve }) => {
  const { cfg } = context();
  const path = event.url.pathname;
  event.locals.authenticated = !cfg.token || tokenMatches(presentedToken(event.request, event.cookies.get(TOKEN_COOKIE)), cfg.token);
  if (!event.locals.authenticated && path !== "/login") {
    if (path.startsWith("/api/") || path.startsWith("/artifacts/")) {
      return errorResponse(new ApiError("unauthorized", "send the UI token as `Authorization: Bearer <token>`"));
    }
    redirect(303, `/login?next=${encodeURIComponent(path + event.url.search)}`);
  }
  const response = await resolve(event);
  response.headers.set("x-content-type-options", "nosniff");
  response.headers.set("referrer-policy", "same-origin");
  return response;
};
