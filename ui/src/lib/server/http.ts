import { json } from "@sveltejs/kit";
import type { ErrorBody } from "@troupe/events";

/** Error codes of the REST API and their HTTP status. */
export const STATUS_OF: Record<string, number> = {
  invalid: 400,
  "invalid-data": 400,
  "not-json": 400,
  "too-deep": 400,
  "not-object": 400,
  "bad-request": 400,
  unauthorized: 401,
  "not-found": 404,
  "method-not-allowed": 405,
  conflict: 409,
  gone: 410,
  "too-large": 413,
  "unsupported-media-type": 415,
  unavailable: 503,
  timeout: 504,
};

/** An API failure: carries the error body and the HTTP status it maps to. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly status = STATUS_OF[code] ?? 400,
  ) {
    super(message);
  }
  body(): ErrorBody {
    return { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}) };
  }
}

export function errorResponse(e: ApiError): Response {
  return json({ success: false, error: e.body() }, { status: e.status });
}

/** Runs an API handler; ApiErrors become the error shape, anything else a logged 500. */
export async function api(run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof ApiError) return errorResponse(e);
    console.error("troupe ui: API handler failed", e);
    return errorResponse(new ApiError("internal", `internal error: ${(e as Error).message}`, undefined, 500));
  }
}

/**
 * Reads a JSON request body within a size limit, without trusting
 * Content-Length alone (a chunked body is counted as it streams).
 */
export async function readBody(request: Request, maxBytes: number): Promise<string> {
  const type = request.headers.get("content-type") ?? "";
  // application/json, with parameters or not (charset=utf-8); \b alone let application/json-patch+json through.
  if (type && !/^application\/json\s*(;|$)/i.test(type)) {
    throw new ApiError("unsupported-media-type", `send JSON with Content-Type: application/json, got ${type}`);
  }
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw new ApiError("too-large", `request body is ${declared} bytes, the limit is ${maxBytes}`);
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (e) {
      // adapter-node's own limit (BODY_SIZE_LIMIT) ends a chunked body with a 413 error.
      if ((e as { status?: number }).status === 413) throw new ApiError("too-large", `request body exceeds the limit of ${maxBytes} bytes`);
      throw e;
    }
    const { done, value } = chunk;
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel();
      throw new ApiError("too-large", `request body exceeds the limit of ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  try {
    // Fatal: a body that is not UTF-8 is refused, not patched with U+FFFD (NATS clients get the same verdict).
    return utf8.decode(Buffer.concat(chunks));
  } catch {
    throw new ApiError("invalid", "request body is not valid UTF-8");
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Refuses a query parameter the endpoint does not take, or one given twice: a filter with a typo (`stauts=dead`)
 * or a second value (`status=failed&status=dead`) was ignored, and the answer held every job.
 */
export function checkQuery(url: URL, allowed: readonly string[], hints: Record<string, string> = {}): void {
  const seen = new Set<string>();
  for (const name of url.searchParams.keys()) {
    if (!allowed.includes(name)) throw new ApiError("invalid", `${name.slice(0, 64)}: not a parameter of this endpoint (it takes ${allowed.join(", ")})`, name.slice(0, 64));
    if (seen.has(name)) throw new ApiError("invalid", `${name}: given more than once${hints[name] ? ` (${hints[name]})` : ""}`, name);
    seen.add(name);
  }
}

/** Parses an optional positive integer query parameter. */
export function intParam(url: URL, name: string, def: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === "") return def;
  if (!/^\d+$/.test(raw)) throw new ApiError("invalid", `${name}: expected a whole number, got ${JSON.stringify(raw)}`, name);
  const n = Number(raw);
  if (n < 1 || n > max) throw new ApiError("invalid", `${name}: must be between 1 and ${max}, got ${n}`, name);
  return n;
}
