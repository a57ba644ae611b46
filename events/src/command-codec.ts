import "./formats.ts";
import type { Static, TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { checkJobSpecSemantics, parseJsonObject, type DecodeError, type Decoded } from "./codec.ts";
import { COMMAND_NAMES, CommandSchemas, ReplySchemas, type Command, type CommandName, type SubmitJob } from "./commands.ts";
import { firstError } from "./errors.ts";
import { validateFieldNames, validateScenario, validateTargets } from "./scenario.ts";
import { DEFAULT_JOB_TIMEOUT_MS, DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY, type JobSpec } from "./payloads.ts";

export const MAX_COMMAND_BYTES = 256 * 1024;

const checks = Object.fromEntries(
  COMMAND_NAMES.map((n) => [n, TypeCompiler.Compile(CommandSchemas[n] as TSchema)]),
) as Record<CommandName, TypeCheck<TSchema>>;

/** Validates a value (already parsed) as a command; the error names the field. */
export function validateCommand<N extends CommandName>(name: N, value: unknown): Decoded<Command<N>> {
  // Scenario first: its step-by-step check names the step and field, a union check cannot.
  const scenarioErr = scenarioError(name, value);
  if (scenarioErr) return { ok: false, error: { code: "invalid-data", ...scenarioErr } };
  const err = firstError(checks[name], value, "");
  if (err) return { ok: false, error: { code: "invalid-data", ...err } };
  if (name === "jobs.submit" || name === "worker.assign") {
    const v = value as Record<string, unknown>;
    const spec = (name === "worker.assign" ? v.spec : v) as Record<string, unknown>;
    const semErr = checkJobSpecSemantics(spec, name === "worker.assign" ? "spec" : "");
    if (semErr) return { ok: false, error: { code: "invalid-data", ...semErr, path: semErr.path.replace(/^\./, "") } };
    // Only for commands: a job.submitted already in the log is judged by the rules it was recorded under.
    const urlErr = unparsableUrl(spec.url);
    if (urlErr) return { ok: false, error: { code: "invalid-data", path: name === "worker.assign" ? "spec.url" : "url", message: urlErr } };
    const fpErr = fingerprintError(spec.fingerprint as JobSpec["fingerprint"], name === "worker.assign" ? "spec.fingerprint" : "fingerprint");
    if (fpErr) return { ok: false, error: { code: "invalid-data", ...fpErr } };
    const proxyErr = proxyServerError((spec.proxy as JobSpec["proxy"])?.server);
    if (proxyErr) return { ok: false, error: { code: "invalid-data", path: name === "worker.assign" ? "spec.proxy.server" : "proxy.server", message: proxyErr } };
  }
  return { ok: true, value: value as Command<N> };
}

/** A proxy address read as the worker uses it: the host by http's rules (IDN to punycode), the port if given. */
export type ProxyAddress = { scheme: string; host: string; port?: number };

/**
 * Reads `scheme://host[:port]`, or says why no worker could use it. The authority is read by http's rules whatever
 * the scheme: a socks URL's host is opaque to the URL parser, which takes anything (`socks5://%41:1080`) and leaves
 * an IDN percent-encoded, so the worker looked up names that do not exist (a review). The submission check and the
 * worker read it with this one function.
 */
export function parseProxyServer(server: string): { ok: true; value: ProxyAddress } | { ok: false; error: string } {
  const bad = { ok: false as const, error: `${JSON.stringify(server.slice(0, 300))} is not a proxy address (scheme://host:port, e.g. http://10.0.0.5:3128)` };
  const m = /^([a-z0-9]+):\/\/(.*)$/i.exec(server);
  if (!m) return bad;
  const [, scheme, authority] = m as unknown as [string, string, string];
  if (authority.includes("@")) return { ok: false, error: "no login in the proxy's address: give it as proxy.username and proxy.password (the password is sealed; one in the address would be kept in clear)" };
  let u: URL;
  try {
    u = new URL(`http://${authority}`);
  } catch {
    return bad;
  }
  if (u.port === "0") return { ok: false, error: "the proxy's port must be from 1 to 65535" };
  if (u.pathname !== "/" || u.search || u.hash || /[/?#\\]/.test(authority)) return { ok: false, error: "the proxy's address is scheme://host:port, without a path, query or fragment" };
  // http's rules drop an explicit :80; any other scheme's default differs, so the port is read from the authority.
  const port = /:(\d+)$/.exec(authority)?.[1];
  return { ok: true, value: { scheme: scheme.toLowerCase(), host: u.hostname.replace(/^\[|\]$/g, ""), ...(port !== undefined ? { port: Number(port) } : {}) } };
}

/**
 * What the schema's `scheme://host[:port]` pattern lets through and no worker can use, refused at submission
 * (commands only): a port out of range or 0 and a host that is no host name made every attempt fail as a
 * retryable "worker error: Invalid URL" until the job was dead; a login in the URL was kept in clear in the log,
 * the read models and the API, and not used (the worker takes `username`/`password`). An attack. A worker refuses
 * such an assignment as invalid (it decodes worker.assign with this too). Undefined (no proxy): null.
 */
export function proxyServerError(server: string | undefined): string | null {
  if (server === undefined) return null;
  const r = parseProxyServer(server);
  return r.ok ? null : r.error;
}

/** Control characters a header value may not hold (a tab it may: Chromium sends it). */
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/**
 * What the browser refuses of a fingerprint, refused at submission (commands only, as the url check): Chromium
 * rejects a user agent or client hint with control characters and an unknown time zone, and each attempt failed
 * as retryable until the job was dead (an attack). Time zones are checked against this runtime's ICU zones, which
 * ignore case; the worker passes Chromium the canonical name (services/worker/src/fingerprint.ts).
 */
function fingerprintError(fp: JobSpec["fingerprint"], at: string): { path: string; message: string } | null {
  if (!fp) return null;
  const texts: [string, string | undefined][] = [["userAgent", fp.userAgent]];
  const m = fp.userAgentMetadata;
  if (m) {
    for (const k of ["fullVersion", "platform", "platformVersion", "architecture", "model", "bitness"] as const) texts.push([`userAgentMetadata.${k}`, m[k]]);
    for (const list of ["brands", "fullVersionList"] as const) {
      (m[list] ?? []).forEach((b, i) => texts.push([`userAgentMetadata.${list}[${i}].brand`, b.brand], [`userAgentMetadata.${list}[${i}].version`, b.version]));
    }
  }
  for (const [k, v] of texts) if (v !== undefined && CONTROL.test(v)) return { path: `${at}.${k}`, message: "no control characters (it goes into request headers, which the browser refuses)" };
  if (fp.timezone !== undefined && canonicalTimeZone(fp.timezone) === undefined) return { path: `${at}.timezone`, message: `${JSON.stringify(fp.timezone)} is not a time zone the browser knows (IANA names, e.g. Europe/Berlin)` };
  return null;
}

/**
 * A time zone's name as ICU writes it (`asia/tokyo` → `Asia/Tokyo`), or undefined when this runtime's ICU does not
 * know it. Intl ignores case, Chromium does not: submissions are checked with it, and the worker hands Chromium the
 * name it returns (Chromium refused "europe/berlin" and "utc" on every attempt; a review).
 */
export function canonicalTimeZone(tz: string): string | undefined {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

function scenarioError(name: CommandName, value: unknown) {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  if (name === "jobs.submit" && v.scenario !== undefined) return validateScenario(v.scenario, "scenario") ?? validateTargets(v.scenario, "scenario") ?? validateFieldNames(v.scenario, "scenario");
  if (name === "worker.assign" && typeof v.spec === "object" && v.spec !== null) {
    const spec = v.spec as Record<string, unknown>;
    // Not validateTargets: a job submitted before jobs.submit checked it would be refused by every worker, and the
    // master requeues a refusal (for days, ~2000 events; a review). The worker fails such a job before its first step.
    if (spec.scenario !== undefined) return validateScenario(spec.scenario, "spec.scenario");
  }
  return null;
}

/** Decodes request bytes as a command. */
export function decodeCommand<N extends CommandName>(name: N, body: Uint8Array | string, maxBytes = MAX_COMMAND_BYTES): Decoded<Command<N>> {
  const parsed = parseJsonObject(body, maxBytes);
  if (!parsed.ok) return parsed;
  return validateCommand(name, parsed.value);
}

export type ReplyName = keyof typeof ReplySchemas;
export type Reply<N extends ReplyName> = Static<(typeof ReplySchemas)[N]>;
const replyChecks = Object.fromEntries(
  (Object.keys(ReplySchemas) as ReplyName[]).map((n) => [n, TypeCompiler.Compile(ReplySchemas[n] as TSchema)]),
) as Record<ReplyName, TypeCheck<TSchema>>;

/** Decodes a reply (jobs.submit, ack, worker.assign): whoever asks validates what comes back. */
export function decodeReply<N extends ReplyName>(name: N, body: Uint8Array | string, maxBytes = MAX_COMMAND_BYTES): Decoded<Reply<N>> {
  const parsed = parseJsonObject(body, maxBytes);
  if (!parsed.ok) return parsed;
  const err = firstError(replyChecks[name], parsed.value, "");
  if (err) return { ok: false, error: { code: "invalid-data", ...err } };
  return { ok: true, value: parsed.value as Reply<N> };
}

/**
 * A submitted job with the defaults applied, as the log keeps it: a proxy
 * password is replaced by `sealPassword(password)` (the master seals it with
 * its secrets key; events/src/node/secrets.ts). Throws when the job has a proxy
 * password and no sealer is given — a clear password must never reach the log.
 */
export function jobSpecFromSubmit(cmd: SubmitJob, sealPassword?: (plain: string) => string): JobSpec {
  const { idempotencyKey: _key, proxy, workerLabels, ...rest } = cmd;
  let sealedProxy: JobSpec["proxy"];
  if (proxy) {
    const { password, bypass, ...p } = proxy;
    if (password !== undefined && !sealPassword) throw new Error("jobSpecFromSubmit: the job has a proxy password and no sealer was given");
    sealedProxy = { ...p, ...(password !== undefined ? { sealedPassword: (sealPassword as (plain: string) => string)(password) } : {}), ...(bypass ? { bypass } : {}) };
  }
  return {
    ...rest,
    // An empty list asks for nothing: left out, so workers that predate labels (their schema refuses the field) run the job.
    ...(workerLabels?.length ? { workerLabels } : {}),
    ...(sealedProxy ? { proxy: sealedProxy } : {}),
    priority: cmd.priority ?? DEFAULT_PRIORITY,
    maxAttempts: cmd.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    timeoutMs: cmd.timeoutMs ?? DEFAULT_JOB_TIMEOUT_MS,
  };
}

export type { DecodeError };

/** Why a URL that passed the schema's `^https?://` cannot be opened (a port past 65535, a bad host), or null. */
function unparsableUrl(url: unknown): string | null {
  if (typeof url !== "string") return null;
  try {
    new URL(url);
    return null;
  } catch {
    return `not a URL a browser can open: ${JSON.stringify(url.slice(0, 200))}`;
  }
}
