import { createLogger, defineCommand, shutdownSignal } from "@troupe/events/node";
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
publishes worker.deregistered and exits 0. NATS credentials: the worker role
(TROUPE_NATS_WORKER_USER / TROUPE_NATS_WORKER_PASSWORD, or <data dir>/credentials.env).`,
  async run({ values }) {
    const config = resolveConfig(values);
    const log = createLogger("worker");
    const stop = shutdownSignal();
    console.log(describeConfig(config));
    const starting = startWorker(config, { log });
    const first = await Promise.race([starting, stop]);
    if (typeof first === "string") {
      // A signal while start-up still waits (for NATS, usually): leave without waiting for it, deregistering if it got that far.
      log.warn({ signal: first }, "stopped during start-up");
      const done = starting.then((w) => w.stop(`received ${first} during start-up`), () => undefined);
      await Promise.race([done, new Promise((r) => setTimeout(r, 2000).unref())]);
      process.exit(0);
    }
    const worker = first;
    console.log(`   Browser:     ${worker.pool.version}\n   Status:      ${worker.statusUrl}\n✅ registered as ${config.workerId} (instance ${worker.instanceId})`);
    const sig = await stop;
    log.info({ signal: sig }, "shutting down");
    await worker.stop(`received ${sig}`);
    return 0;
  },
});
