/**
 * A fake worker as its own process, for kill -9 tests:
 *   node --import tsx services/master/test/fake-worker-main.ts
 * Config from FAKE_WORKER_ID, FAKE_SLOTS, FAKE_BEHAVIOUR (hang|complete), FAKE_PROGRESS_MS
 * and the usual NATS_URL + TROUPE_NATS_WORKER_* variables. Prints "ready" when registered.
 */
import { assertValidId } from "@troupe/events";
import { FakeWorker } from "./fake-worker.ts";

const env = process.env as Record<string, string>;
const behaviour = env.FAKE_BEHAVIOUR ?? "hang";
if (behaviour !== "hang" && behaviour !== "complete") throw new Error(`FAKE_BEHAVIOUR: expected hang or complete, got ${behaviour}`);
const w = new FakeWorker({
  id: assertValidId(env.FAKE_WORKER_ID, "FAKE_WORKER_ID"),
  url: env.NATS_URL ?? "nats://127.0.0.1:4222",
  env,
  slots: Number(env.FAKE_SLOTS ?? "1"),
  heartbeatMs: Number(env.FAKE_HEARTBEAT_MS ?? "200"),
  progressEveryMs: Number(env.FAKE_PROGRESS_MS ?? "0"),
  behaviour: () => (behaviour === "hang" ? { kind: "hang" } : { kind: "complete", afterMs: 50 }),
});
await w.start();
process.stdout.write("ready\n");
process.on("SIGTERM", () => void w.stop({ deregister: true }).then(() => process.exit(0)));
