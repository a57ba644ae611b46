import { timingSafeEqual, createHash } from "node:crypto";

export const TOKEN_COOKIE = "troupe_token";

/** Constant-time comparison of a presented token with the configured one. */
export function tokenMatches(presented: string | null | undefined, token: string): boolean {
  if (!presented) return false;
  const a = createHash("sha256").update(presented).digest();
  const b = createHash("sha256").update(token).digest();
  return timingSafeEqual(a, b);
}

/** The token a request presents: `Authorization: Bearer <token>` (scripts) or the login cookie (browsers). */
export function presentedToken(request: Request, cookie: string | undefined): string | undefined {
  const h = request.headers.get("authorization");
  const m = h ? /^Bearer\s+(.+)$/i.exec(h) : null;
  return m?.[1] ?? cookie;
}
