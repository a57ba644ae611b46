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
    const worker = await startWorker(config, { log });
    console.log(`   Browser:     ${worker.pool.version}\n   Status:      ${worker.statusUrl}\n✅ registered as ${config.workerId} (instance ${worker.instanceId})`);
    const sig = await stop;
    log.info({ signal: sig }, "shutting down");
    await worker.stop(`received ${sig}`);
    return 0;
  },
});
