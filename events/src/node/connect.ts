import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { loadCredential, type NatsRole } from "./credentials.ts";

export interface ConnectOptions {
  /** nats://host:port, comma-separated for several servers. */
  url: string;
  role: NatsRole;
  dataDir: string;
  /** Connection name shown in the server's monitoring (`connz`). */
  name: string;
  log?: Logger;
  /** Keep trying the first connect too (services); CLI commands fail fast. */
  waitOnFirstConnect?: boolean;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Skip the error captured up front for every request's async stack trace (a hot path's CPU: the master's). */
  noAsyncTraces?: boolean;
}

/**
 * Connects as a role with its credentials. Long-running services reconnect
 * forever (nats.js gives up after 10 tries by default) and log status changes.
 */
export async function connectAs(o: ConnectOptions): Promise<NatsConnection> {
  const cred = loadCredential(o.role, o.dataDir, o.env);
  const servers = o.url.split(",").map((s) => s.trim()).filter(Boolean);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      user: cred.user,
      pass: cred.password,
      name: o.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      waitOnFirstConnect: o.waitOnFirstConnect ?? false,
      timeout: o.timeoutMs ?? 5000,
      ...(o.noAsyncTraces ? { noAsyncTraces: true } : {}),
    });
  } catch (e) {
    throw new Error(`cannot connect to NATS at ${o.url} as ${o.role} (${cred.user}): ${(e as Error).message}`, { cause: e });
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
