import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { loadCredential, type NatsRole } from "./credentials.ts";
import { retryWithBackoff } from "./retry.ts";
import { readCertificate } from "./tls-certs.ts";
import { UsageError } from "./options.ts";

export interface ConnectOptions {
  /** nats://host:port, comma-separated for several servers; tls://host:port insists on TLS (the server's certificate checked against the system's CAs, or `ca`). */
  url: string;
  /** PEM file of the CA that signed the server's certificate (TROUPE_NATS_CA); set, the connection must be TLS. */
  ca?: string;
  role: NatsRole;
  dataDir: string;
  /** Connection name shown in the server's monitoring (`connz`). */
  name: string;
  log?: Logger;
  /** Keep trying the first connect too (services); CLI commands fail fast. */
  waitOnFirstConnect?: boolean;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Stops waiting on first connect (waitOnFirstConnect): connectAs then rejects. */
  abort?: AbortSignal;
  /** Skip the error captured up front for every request's async stack trace (a hot path's CPU: the master's). */
  noAsyncTraces?: boolean;
  /** Where replies to this connection's requests arrive (default `_INBOX`); a worker's own NATS user may read only its own (worker-users.ts). */
  inboxPrefix?: string;
}

/**
 * Connects as a role with its credentials. Long-running services reconnect
 * forever (nats.js gives up after 10 tries by default) and log status changes.
 */
export async function connectAs(o: ConnectOptions): Promise<NatsConnection> {
  // The CA first: an unreadable one is a usage error whatever the credentials.
  const tls = natsTlsOptions(o.url, o.ca);
  const cred = loadCredential(o.role, o.dataDir, o.env);
  // nats.js drops a URL's scheme (it would take tls:// as a wish, not a must): TLS is asked for with `tls` instead.
  const servers = o.url.split(",").map((s) => s.trim().replace(/^tls:\/\//i, "nats://")).filter(Boolean);
  const options = {
    servers,
    user: cred.user,
    pass: cred.password,
    name: o.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    timeout: o.timeoutMs ?? 5000,
    ...(o.noAsyncTraces ? { noAsyncTraces: true } : {}),
    ...(o.inboxPrefix ? { inboxPrefix: o.inboxPrefix } : {}),
    // Set, nats.js refuses a server that offers no TLS before it sends the password.
    ...(tls ? { tls } : {}),
  };
  const failure = (e: unknown) => `cannot connect to NATS at ${o.url} as ${o.role} (${cred.user}): ${(e as Error).message}${tlsHint(e as Error, o.ca)}`;
  let nc: NatsConnection;
  if (o.waitOnFirstConnect) {
    // Our own retries rather than nats.js's waitOnFirstConnect, which retries in silence: a wrong CA or
    // password would leave a service waiting forever without a word. Each new reason is logged, then every 30 s.
    let last = "", lastAt = 0;
    const got = await retryWithBackoff(() => connect(options), {
      maxWaitMs: 5000,
      stopped: () => o.abort?.aborted === true,
      // Ends the wait between tries at once (up to 5 s): a signal then stops a service within one connect attempt.
      ...(o.abort ? { signal: o.abort } : {}),
      // An attempt under way is let go too: one that connects after the signal is closed at once.
      abandon: (late) => late.close(),
      onRetry: (e, waitMs) => {
        const msg = failure(e);
        if (msg === last && Date.now() - lastAt <= 30_000) return;
        if (o.log) o.log.warn({ retryInMs: waitMs }, `${msg}; trying again`);
        else console.warn(`${msg}; trying again`);
        last = msg;
        lastAt = Date.now();
      },
    });
    if (!got || o.abort?.aborted) {
      // Told to stop (perhaps while an attempt was on its way): no connection is handed out after that.
      await got?.close();
      throw new Error(`gave up connecting to NATS at ${o.url} as ${o.role}: ${last || "aborted"}`);
    }
    nc = got;
  } else {
    try {
      nc = await connect(options);
    } catch (e) {
      throw new Error(failure(e), { cause: e });
    }
  }
  if (o.log) {
    const log = o.log;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "ping") continue;
        const level = s.type === "error" || s.type === "disconnect" ? "warn" : "info";
        log[level]({ nats: s }, `nats ${s.type}`);
      }
    })();
  }
  return nc;
}

/**
 * nats.js TLS options for a URL list and CA file: undefined when neither asks
 * for TLS (nats.js still upgrades when the server requires it, checking the
 * certificate against the system's CAs).
 */
export function natsTlsOptions(url: string, ca?: string): { caFile?: string; checkServerIdentity: typeof checkDialledIdentity } | undefined {
  if (ca) {
    // A setting's error: a usage error (exit 2) in every command, as `troupe ui` had it (`tail`, `submit`, … exited 1).
    try {
      readCertificate(ca, "TROUPE_NATS_CA");
    } catch (e) {
      throw new UsageError((e as Error).message, { cause: e });
    }
    return { caFile: ca, checkServerIdentity: checkDialledIdentity };
  }
  return /(^|,)\s*tls:\/\//i.test(url) ? { checkServerIdentity: checkDialledIdentity } : undefined;
}

/**
 * The server's certificate must name the host dialled. nats.js gives Node a
 * server name only for DNS hosts; for an IP address Node would check the
 * certificate against "localhost" (which every self-signed one names), so the
 * address the socket reached is checked instead. Node calls this as a method
 * of its connect options, which hold the dialled socket.
 */
export function checkDialledIdentity(this: { servername?: string; socket?: { remoteAddress?: string } } | undefined, hostname: string, cert: PeerCertificate): Error | undefined {
  if (this?.servername) return checkServerIdentity(this.servername, cert);
  const ip = this?.socket?.remoteAddress?.replace(/^::ffff:(?=\d+\.)/, "");
  if (!ip) return new Error(`cannot tell which address the NATS server was reached at (checked name ${hostname}), so its certificate is not trusted`);
  return checkServerIdentity(ip, cert);
}

function tlsHint(e: Error, ca?: string): string {
  const m = `${e.message} ${(e.cause as Error | undefined)?.message ?? ""}`;
  if (/self[- ]signed|unable to (verify|get local issuer)|certificate/i.test(m)) {
    return ca
      ? ` (the server's certificate is not signed by ${ca}, or does not name the host in the URL)`
      : " (the server's certificate is not trusted: set TROUPE_NATS_CA to the CA file it was signed with, e.g. <data dir>/tls/ca.crt of `troupe nats --tls-self-signed`)";
  }
  if (/does not support 'tls'|tls.*not available/i.test(m)) return " (TLS was asked for, by TROUPE_NATS_CA or a tls:// URL, and this server offers none)";
  return "";
}

/**
 * Closes a connection for good, flushing what it can: drains it (unsubscribes,
 * lets handlers finish, flushes publishes) and, when that fails or takes longer
 * than `timeoutMs` — typically because the server is gone and the connection is
 * still reconnecting — closes it outright. A drain that fails leaves nats.js
 * reconnecting forever, which keeps the process alive after its work is done.
 */
export async function closeConnection(nc: NatsConnection, o: { log?: Logger; timeoutMs?: number } = {}): Promise<void> {
  if (nc.isClosed()) return;
  const timeoutMs = o.timeoutMs ?? 5000;
  let timer: NodeJS.Timeout | undefined;
  const drained = await Promise.race([
    nc.drain().then(() => true, (e: unknown) => (e as Error).message),
    new Promise<string>((r) => (timer = setTimeout(() => r(`no drain within ${timeoutMs} ms`), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (drained === true) return;
  const why = `NATS connection not drained (${drained}); closing it, publishes not yet flushed are dropped`;
  if (o.log) o.log.warn(why);
  else console.warn(why);
  await nc.close();
}

/**
 * The log line of a service whose connection nats.js closed for good, saying why when the server refused the
 * credentials: a worker whose user was removed (`troupe worker-user remove`) logged only "closed for good" and a
 * stack (a new user's walkthrough). `who` names the credential, e.g. "this worker's NATS user worker-us-east-1";
 * `perWorkerUser`: it may be one `troupe worker-user` made (and removed). nats.js gives up alike on login timeouts,
 * which say nothing of the credentials.
 */
export function closedForGoodMessage(err: Error | void | undefined, who: string, o: { perWorkerUser?: boolean } = {}): string {
  const text = err instanceof Error ? err.message : "";
  if (/authentication timeout/i.test(text)) return `NATS timed out the login of ${who} twice (a slow link, or this process stalled), and the connection is closed for good; stopping`;
  const refused = err instanceof Error && (err.name === "AuthorizationError" || /authorization violation|authentication expired/i.test(text));
  if (!refused) return "NATS connection closed for good; stopping";
  return `NATS refused ${who}, and the connection is closed for good: ${o.perWorkerUser ? "the user was removed (`troupe worker-user remove`), or its password changed" : "its password changed (a new credentials.env)"}; stopping`;
}
