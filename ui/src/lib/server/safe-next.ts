/**
 * Where to go after logging in: a path on this dashboard, never another site. Browsers read `/\evil.com`
 * (and tabs or line breaks inside `//`) as `//evil.com`, so the value is resolved as a browser would
 * and kept only when it stays on this origin.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== "string" || !next.startsWith("/")) return "/";
  const base = "http://dashboard.invalid";
  let u: URL;
  try {
    u = new URL(next, base);
  } catch {
    return "/";
  }
  if (u.origin !== base) return "/";
  return `${u.pathname}${u.search}${u.hash}`;
}
