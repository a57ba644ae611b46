import { jetstreamManager } from "@nats-io/jetstream";
import { startTestNats, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openReadModels, Script, spec, startLive, tempDbPath, waitCaughtUp } from "./helpers.ts";

/** A stream recreated behind the projector's back would make every new event look like a redelivery. */

let nats: TestNats;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
});
afterAll(async () => {
  await nats?.stop();
});

describe("projector and a recreated stream", () => {
  it("refuses to follow a stream that ends below its checkpoint and says to rebuild", async () => {
    const master = await nats.js("master");
    const s = new Script({ master: master.js, worker: (await nats.js("worker")).js }, Date.now() - 60_000);
    for (const id of ["a", "b", "c"]) await s.emit("job.submitted", { jobId: id, spec });
    const path = tempDbPath();
    const nc = await nats.connect("projector");
    const first = await startLive(nc, path);
    const rm = openReadModels(path);
    await waitCaughtUp(nats, rm);
    rm.close();
    await first.live.stop();

    await (await jetstreamManager(master.nc)).streams.delete("TROUPE_EVENTS");
    await nats.init();
    await s.emit("job.submitted", { jobId: "d", spec });
    await expect(startLive(nc, path)).rejects.toThrow(/TROUPE_EVENTS ends at sequence 1, below the read models' checkpoint 3: the stream was recreated; rebuild the read models \(troupe replay\)/);
  });
});
