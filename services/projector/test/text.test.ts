import Database from "better-sqlite3";
import { createEvent } from "@troupe/events";
import { startTestNats, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dumpTables, openReadModels, rebuildInto, registration, Script, spec, startLive, tempDbPath, waitCaughtUp } from "./helpers.ts";

/**
 * Text no reader can take, written straight to the log by hostile credentials: an unpaired surrogate in a
 * worker's name was stored as bytes no UTF-8 reader decodes, and a `__proto__` key in a submitted scenario made
 * the job's page answer 500 for good (an attack). Live and rebuilt alike: the name reads as U+FFFD, the job is skipped.
 */

let nats: TestNats;
let path: string;
let stopLive: (() => Promise<void>) | undefined;

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  const master = await nats.js("master");
  const worker = await nats.js("worker");
  const s = new Script({ master: master.js, worker: worker.js }, Date.now() - 60_000);
  await s.emit("worker.registered", registration("w1"));
  // JSON.stringify writes an unpaired surrogate as the escape \ud800, which JSON.parse turns back into one.
  const named = createEvent("worker.registered", { ...registration("w2"), name: "a\ud800b" }, "w2");
  await worker.js.publish("troupe.evt.worker.w2.registered", JSON.stringify(named));
  const proto = JSON.stringify(createEvent("job.submitted", { jobId: "j-proto", spec: { ...spec, tags: ["MARK"] } }, "m1"));
  await master.js.publish("troupe.evt.job.j-proto.submitted", proto.replace('"tags":["MARK"]', '"tags":["x"],"__proto__":{"polluted":true}'));
  await s.emit("job.submitted", { jobId: "j-after", spec });
  path = tempDbPath();
  const { live } = await startLive(await nats.connect("projector"), path);
  stopLive = () => live.stop();
});

afterAll(async () => {
  await stopLive?.();
  await nats?.stop();
});

describe("text no reader can take", () => {
  it("an unpaired surrogate is folded as U+FFFD (valid UTF-8 in SQLite), a __proto__ key is skipped, live and in a rebuild", async () => {
    const rm = openReadModels(path);
    try {
      await waitCaughtUp(nats, rm);
      expect(rm.getWorker("w2")?.name).toBe("a\uFFFDb");
      expect(rm.getJob("j-proto")).toBeNull();
      expect(rm.getJob("j-after")?.status).toBe("queued");
    } finally {
      rm.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      expect((db.prepare("select hex(name) as h from workers where id = 'w2'").get() as { h: string }).h).toBe("61EFBFBD62");
    } finally {
      db.close();
    }
    const live = dumpTables(path);
    expect(live.projection_skips).toEqual([{ stream: "TROUPE_EVENTS", reason: "invalid-data", count: 1 }]);
    const rebuilt = tempDbPath();
    await rebuildInto(await nats.connect("projector"), rebuilt);
    expect(dumpTables(rebuilt)).toEqual(live);
  });
});
