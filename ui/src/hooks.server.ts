import type { Handle } from "@sveltejs/kit";
import { presentedToken, tokenMatches, TOKEN_COOKIE } from "$lib/server/auth.ts";
import { context } from "$lib/server/context.ts";
import { isLoopbackHost } from "$lib/server/host-check.ts";
import { ApiError, errorResponse } from "$lib/server/http.ts";

/** The host rule (no token: loopback names only), the token rule (with TROUPE_UI_TOKEN set, every page and API call needs it: cookie or Bearer), cross-site writes. */
export const handle: Handle = async ({ event, resolve }) => {
  const { cfg } = context();
  const path = event.url.pathname;
  // SvelteKit decodes the path to route it; a malformed one (`/%FF`) would otherwise reach the login redirect below,
  // which SvelteKit let escape as an unhandled rejection that ended the process (one request took a dashboard down).
  let routed: string;
  try {
    routed = decodeURI(path);
  } catch {
    return errorResponse(new ApiError("invalid", "malformed percent-encoding in the path"));
  }
  // Without a token the dashboard binds loopback only (`troupe ui`), so a Host naming anything else is a DNS-rebinding page.
  if (!cfg.token && !isLoopbackHost(event.request.headers.get("host"))) {
    return errorResponse(new ApiError("forbidden", `host ${JSON.stringify(event.request.headers.get("host") ?? "")} refused: a dashboard without a login token answers only to this machine's loopback names (localhost, 127.0.0.1, [::1]), which keeps DNS-rebinding pages out; set TROUPE_UI_TOKEN to serve other names`, undefined, 403));
  }
  event.locals.authenticated = !cfg.token || tokenMatches(presentedToken(event.request, event.cookies.get(TOKEN_COOKIE)), cfg.token);
  if (!event.locals.authenticated && routed !== "/login") {
    // The path as SvelteKit routes it: `/%61pi/stats` is the API too, and got the login page's redirect (a review).
    if (routed.startsWith("/api/") || routed.startsWith("/artifacts/")) {
      return errorResponse(new ApiError("unauthorized", "send the UI token as `Authorization: Bearer <token>`"));
    }
    // Returned, not thrown: a thrown redirect is only caught where SvelteKit expects one.
    return new Response(null, { status: 303, headers: { location: `/login?next=${encodeURIComponent(path + event.url.search)}` } });
  }
  // Cross-site writes: SvelteKit's CSRF check covers only form content types, and an action without a body (cancel,
  // retry, drain) is a "simple" request a browser sends from any page without asking first — a review cancelled a job
  // and could drain `up`'s guessable wn-local-NN workers from another site when no token is set. A browser names the
  // page's origin on every cross-site POST; tools like curl send none and are not affected.
  // Every path: SvelteKit routes on the decoded path, so a check on `/api/` alone let `/%61pi/…` through.
  if (!["GET", "HEAD", "OPTIONS"].includes(event.request.method)) {
    const origin = event.request.headers.get("origin");
    if (origin && origin !== event.url.origin) {
      return errorResponse(new ApiError("forbidden", `cross-site request from ${origin} refused: the dashboard takes writes from its own pages or from tools that send no Origin`, undefined, 403));
    }
  }
  const response = await resolve(event);
  response.headers.set("x-content-type-options", "nosniff");
  response.headers.set("referrer-policy", "same-origin");
  return response;
};
