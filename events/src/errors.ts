import type { TSchema } from "@sinclair/typebox";
import type { TypeCheck } from "@sinclair/typebox/compiler";

/** A validation failure that names the field (JSON path-like) and why. */
export interface FieldError {
  path: string;
  message: string;
}

/** Converts TypeBox's `/a/0/b` pointer into `a[0].b` under a base path. */
export function pointerToPath(base: string, pointer: string): string {
  if (!pointer) return base;
  let out = base;
  for (const raw of pointer.split("/").slice(1)) {
    const tok = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^\d+$/.test(tok) ? `[${tok}]` : out ? `.${tok}` : tok;
  }
  return out;
}

/** The first (most specific) error of a compiled check, or null when the value is valid. */
export function firstError(check: TypeCheck<TSchema>, value: unknown, base: string): FieldError | null {
  if (check.Check(value)) return null;
  const errors = [...check.Errors(value)];
  if (errors.length === 0) return { path: base, message: "invalid value" };
  // Prefer an error about a concrete nested field over a generic union/object error.
  const deepest = errors.reduce((a, b) => (b.path.split("/").length > a.path.split("/").length ? b : a));
  const pick = errors.find((e) => e.path === deepest.path) ?? deepest;
  let message = pick.message;
  const description = (pick.schema as { description?: string } | undefined)?.description;
  if (description && /to match '/.test(message)) message = `expected ${description}`;
  else if (description && /Expected/.test(message)) message = `${message} (${description})`;
  // Unknown properties are reported on the parent; name the property itself.
  if (/Unexpected property/.test(message)) {
    return { path: pointerToPath(base, pick.path), message: "unknown property" };
  }
  return { path: pointerToPath(base, pick.path), message };
}
