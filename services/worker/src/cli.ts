import { closedForGoodMessage, createLogger, defineCommand, shutdownSignal } from "@troupe/events/node";
import { describeConfig, resolveConfig, workerOptions } from "./config.ts";
import { startWorker } from "./worker.ts";

/** `troupe worker`: config → banner → worker → wait for SIGINT/SIGTERM → drain → exit 0. */
export const command = defineCommand({
  name: "worker",
  summary: "run a worker: registration, heartbeats, Puppeteer scenario jobs, GET /status",
  options: workerOptions,
  details: `
On SIGINT/SIGTERM the worker publishes worker.draining, refuses new jobs, lets
running jobs finish for --drain-grace-ms (then fails them as retryable),
publishes worker.deregistered and exits 0. It exits 1 if NATS closes its
connection for good (e.g. its password is refused after a NATS restart). NATS credentials: the worker role
(TROUPE_NATS_WORKER_USER / TROUPE_NATS_WORKER_PASSWORD, or <data dir>/credentials.env): the shared worker
user, or this worker's own from \`troupe worker-user add <id>\` (then TROUPE_WORKER_ID must be that id).`,
  async run({ values }) {
    const config = resolveConfig(values);
    const log = createLogger("worker");
    const stop = shutdownSignal();
    console.log(describeConfig(config));
    const abort = new AbortController();
    const starting = startWorker(config, { log, abort: abort.signal });
    const first = await Promise.race([starting, stop]);
    if (typeof first === "string") {
      // A signal while start-up still waits (for NATS, usually): give up starting; what was opened is closed
      // (the browser and its profile too). If it had just finished starting, stop it properly.
      log.warn({ signal: first }, "stopped during start-up");
      abort.abort();
      const started = await starting.catch(() => undefined);
      await started?.stop(`received ${first} during start-up`);
      return 0;
    }
    const worker = first;
    console.log(`   Browser:     ${worker.pool.version}\n   Status:      ${worker.statusUrl}\n✅ registered as ${config.workerId} (instance ${worker.instanceId})`);
    const outcome = await Promise.race([stop, worker.closed().then((err) => ({ closed: err })), worker.superseded().then((other) => ({ superseded: other }))]);
    if (typeof outcome === "object" && "superseded" in outcome) {
      // Replaced while away (paused, cut off): the other process is the worker now; its jobs are its own. Leave
      // without announcing anything (the master would ignore it) and fail, so nobody mistakes this for a clean stop.
      await worker.abandon();
      return 1;
    }
    if (typeof outcome === "object") {
      // nats.js closed the connection for good (e.g. the password refused twice after a NATS restart): nothing
      // can be reported any more, so stop now and fail, for a supervisor to restart us. Jobs are requeued by their leases.
      log.error({ err: outcome.closed }, closedForGoodMessage(outcome.closed, `this worker's NATS user ${worker.natsUser}`, { perWorkerUser: true }));
      await worker.abandon();
      return 1;
    }
    log.info({ signal: outcome }, "shutting down");
    // A second signal (Ctrl-C again) means now: running jobs are not waited for (their leases bring them back),
    // but the browsers are still closed and their profiles removed, which dying on the default action skipped.
    const again = shutdownSignal();
    const forced = await Promise.race([worker.stop(`received ${outcome}`).then(() => false), again.then(() => true)]);
    if (forced) {
      log.warn({ signal: await again }, "second signal: stopping now, without waiting for running jobs");
      await worker.abandon();
      process.exit(1); // the first stop is still waiting on its grace timer: leave it
    }
    return 0;
  },
});
