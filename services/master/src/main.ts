import type { NatsConnection } from "@nats-io/nats-core";
import { ArtifactRetentionError, artifactRetentionFrom, closeConnection, closedForGoodMessage, connectAs, createLogger, initStores, serveMetricsHttp, shutdownSignal, isNatsOutage, isStorageFull, untilNatsAnswers, type InitOptions, type Logger, type MetricsHttp } from "@troupe/events/node";
import { masterConfig, type MasterOptionValues } from "./config.ts";
import { Master, type MasterConfig } from "./master.ts";
import { serveRpc } from "./rpc.ts";

/** A running master: state, API and metrics on one connection. */
export interface RunningMaster {
  master: Master;
  metricsPort?: number;
  stop(): Promise<void>;
}

/** startMaster's start was ended by its `signal` (everything it had started is stopped). */
export class MasterStartAborted extends Error {
  constructor(readonly step: string) {
    super(`the master's start was stopped while ${step}`);
    this.name = "MasterStartAborted";
  }
}

/**
 * Starts a master on a connection (tests run several in one process). `signal` stops the start wherever it waits (a
 * JetStream that does not answer is waited out for ever): it then rejects with MasterStartAborted.
 */
export async function startMaster(nc: NatsConnection, cfg: MasterConfig, log: Logger, o: { replicas?: number; heartbeatMaxAgeMs?: number; artifacts?: Pick<InitOptions, "artifactMaxAgeMs" | "artifactMaxBytes">; http?: { host: string; port: number }; signal?: AbortSignal } = {}): Promise<RunningMaster> {
  if (o.signal?.aborted) throw new MasterStartAborted("starting");
  const master = new Master(nc, cfg, log);
  const aborted = () => o.signal?.aborted ?? false;
  /** What the start has begun to serve, stopped first on an abort (a submit then found a stopping master). */
  const serving: { rpc?: { stop(): Promise<void> } } = {};
  const onAbort = () =>
    void (async () => {
      await serving.rpc?.stop().catch(() => {});
      await master.stop();
    })().catch((e: unknown) => log.warn({ err: (e as Error).message }, "stopping the master"));
  o.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return await startIt(master, nc, cfg, log, o, aborted, serving);
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
  }
}

async function startIt(master: Master, nc: NatsConnection, cfg: MasterConfig, log: Logger, o: Parameters<typeof startMaster>[3] & object, aborted: () => boolean, serving: { rpc?: { stop(): Promise<void> } }): Promise<RunningMaster> {
  /** What /healthz says while the start is under way. */
  let starting = "waiting for JetStream to check the streams and stores";
  // Listening first: a port or host it cannot have stops the start at once, named (it used to replay the whole log
  // first, then fail with a bare EADDRINUSE and hang until the process watchdog; an attack); and /healthz answers 503
  // while JetStream does not (it refused connections through that wait until a review, 2026-11-30).
  let http: MetricsHttp | undefined;
  if (o.http && o.http.port > 0) {
    try {
      http = await serveMetricsHttp({ host: o.http.host, port: o.http.port, metrics: () => master.metricsText(), healthy: () => master.ready, unhealthy: () => starting });
    } catch (e) {
      await master.stop().catch(() => {});
      throw new Error(`metrics: cannot listen on ${o.http.host}:${o.http.port} (--host [TROUPE_MASTER_HOST], --port [TROUPE_MASTER_PORT]; 0 turns it off): ${(e as Error).message}`, { cause: e });
    }
    log.info({ port: http.port }, "metrics on /metrics");
  }
  // `troupe init` at start: idempotent, so every master may run it.
  const stores = { prefix: cfg.prefix, ...(o.replicas ? { replicas: o.replicas } : {}), ...(o.heartbeatMaxAgeMs ? { heartbeatMaxAgeMs: o.heartbeatMaxAgeMs } : {}) };
  try {
    // A server that does not answer yet (restarting, loaded) is waited out, as the followers below do; `troupe init` fails instead.
    const r = await untilNatsAnswers(nc, () => initStores(nc, { ...stores, ...o.artifacts, ...(o.signal ? { signal: o.signal } : {}), onWaitForPeers: (e) => log.warn({ err: e.message }, "waiting for the cluster's servers to place the streams' replicas") }), {
      // A retention nats-server refuses is final (the master goes on without it); one it did not answer is waited out.
      fatal: (e) => e instanceof ArtifactRetentionError && !(isNatsOutage(e.cause) && !isStorageFull(e.cause)),
      maxWaitMs: 2000,
      stopped: aborted,
      ...(o.signal ? { signal: o.signal } : {}),
      abandon: () => undefined,
      onRetry: (e, wait) => log.warn({ err: e.message, retryInMs: wait }, "could not create or check the streams and stores yet"),
    });
    if (!r) throw new MasterStartAborted("waiting for JetStream to check the streams and stores");
    for (const w of r.warnings) log.warn(w);
  } catch (e) {
    if (!(e instanceof ArtifactRetentionError) || aborted()) {
      await master.stop().catch(() => {});
      await http?.close();
      // Whatever the wait ended with once stopped (InitAborted, a try's error): the stop is what happened.
      throw aborted() ? new MasterStartAborted("waiting for JetStream to check the streams and stores") : e;
    }
    // The screenshot store works without it: a master must not stay down over a retention setting.
    log.error({ err: e.message }, "screenshot store retention not applied; going on with the store as it is");
  }
  starting = "catching up";
  const closeHttp = () => http?.close();
  const rpc = (serving.rpc = serveRpc(master));
  try {
    await master.start();
    if (aborted()) throw new MasterStartAborted("catching up with the log");
  } catch (e) {
    await rpc.stop().catch(() => {});
    await master.stop().catch(() => {});
    await closeHttp();
    throw aborted() && !(e instanceof MasterStartAborted) ? new MasterStartAborted("catching up with the log") : e;
  }
  return {
    master,
    ...(http ? { metricsPort: http.port } : {}),
    async stop() {
      await rpc.stop();
      await master.stop();
      await closeHttp();
    },
  };
}

/** The `troupe master` entry: config → connection → master → wait for a signal → shut down in order. */
export async function main(v: MasterOptionValues): Promise<number> {
  const cfg = masterConfig(v, Master.defaultId);
  const artifacts = artifactRetentionFrom(v);
  const log = createLogger("master").child({ master: cfg.id });
  // Listened for from here: a signal while the start waits for NATS or JetStream (for ever) stops it gracefully,
  // exit 0 (it killed the process on the spot, Node's default).
  const stopping = shutdownSignal();
  const abort = new AbortController();
  void stopping.then(() => abort.abort());
  let nc: NatsConnection;
  try {
    // Every assignment is a request and every decision a JetStream publish: no eager async-trace errors on that path.
    nc = await connectAs({ url: v.natsUrl, ca: v.natsCa, role: "master", dataDir: v.dataDir, name: cfg.id, log, waitOnFirstConnect: true, noAsyncTraces: true, abort: abort.signal });
  } catch (e) {
    if (!abort.signal.aborted) throw e;
    log.info({ sig: await stopping }, "shutting down while connecting to NATS");
    return 0;
  }
  let running: RunningMaster;
  try {
    running = await startMaster(nc, cfg, log, { ...(v.replicas !== undefined ? { replicas: v.replicas } : {}), ...(v.heartbeatMaxAgeHours !== undefined ? { heartbeatMaxAgeMs: v.heartbeatMaxAgeHours * 3600_000 } : {}), artifacts, http: { host: v.host, port: v.port }, signal: abort.signal });
  } catch (e) {
    // The connection would keep the process alive after the error is printed. A stopped start's drain is given 1 s, not
    // 5: over a live link it takes milliseconds (a submit's reply it served is flushed), over one that does not answer
    // nothing gets through anyway, and the stop stays within `docker stop`'s 10 s grace.
    await closeConnection(nc, { log, ...(e instanceof MasterStartAborted ? { timeoutMs: 1000 } : {}) });
    if (e instanceof MasterStartAborted) {
      log.info({ sig: await stopping }, `shutting down: ${e.message}`);
      return 0;
    }
    throw e;
  }
  const sig = await Promise.race([stopping, nc.closed().then((err) => ({ closed: err }))]);
  if (typeof sig === "object") {
    // nats.js closed it for good (e.g. the password was refused twice after a NATS restart): a failure, so a supervisor restarts us.
    log.error({ err: sig.closed }, closedForGoodMessage(sig.closed, "the master's NATS user"));
    await running.stop();
    return 1;
  }
  log.info({ sig }, "shutting down");
  await running.stop();
  await closeConnection(nc, { log });
  return 0;
}
