import { AckPolicy, DeliverPolicy, jetstreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dumpTables, openReadModels, rebuildInto, Script, spec, startLive, tempDbPath, waitCaughtUp } from "./helpers.ts";

/** A stream recreated behind the projector's back would make every new event look like a redelivery. */

let nats: TestNats;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
});
afterAll(async () => {
  await nats?.stop();
});

/** Jobs submitted, then a live projector on a fresh file caught up with the streams. */
async function projected(jobIds: string[]) {
  const master = await nats.js("master");
  const s = new Script({ master: master.js, worker: (await nats.js("worker")).js }, Date.now() - 60_000);
  for (const id of jobIds) await s.emit("job.submitted", { jobId: id, spec });
  const path = tempDbPath();
  const nc = await nats.connect("projector");
  const { live, metrics } = await startLive(nc, path);
  const rm = openReadModels(path);
  await waitCaughtUp(nats, rm);
  return { master, s, path, nc, rm, live, metrics };
}

describe("projector and a recreated stream", () => {
  it("refuses to follow a stream that ends below its checkpoint and says to rebuild", async () => {
    const { master, s, path, nc, rm, live } = await projected(["a", "b", "c"]);
    rm.close();
    await live.stop();

    await (await jetstreamManager(master.nc)).streams.delete("TROUPE_EVENTS");
    await nats.init();
    await s.emit("job.submitted", { jobId: "d", spec });
    await expect(startLive(nc, path)).rejects.toThrow(/TROUPE_EVENTS ends at sequence 1, below the read models' checkpoint 3: the stream was recreated; rebuild the read models \(troupe replay\)/);
  });
});

/**
 * A delivery lost in flight: in a cluster failover the durable's new leader can
 * go on after a delivery that never reached the projector, and with
 * AckPolicy.All acknowledging what comes next would lose it for good (seen in
 * tests/integration/cluster.test.ts: a job stuck "running" in the live read
 * model). Here the durable is replaced behind the projector's back by one that
 * starts two messages later: the same jump in the delivery sequence.
 */
describe("live projector and a lost delivery", () => {
  it("notices the jump in the delivery sequence, follows again from its checkpoint, and loses nothing", async () => {
    const { s, path, nc, rm, live, metrics } = await projected(["p1", "p2", "p3"]);
    const jsm = await jetstreamManager(nc);
    const head = (await jsm.streams.info("TROUPE_EVENTS")).state.last_seq;
    const first = (await jsm.consumers.info("TROUPE_EVENTS", "projector")).config;
    // The next two events (p4, p5) are the deliveries lost in flight: the replacement starts after them.
    await jsm.consumers.delete("TROUPE_EVENTS", "projector");
    for (const id of ["p4", "p5", "p6", "p7"]) await s.emit("job.submitted", { jobId: id, spec });
    await jsm.consumers.add("TROUPE_EVENTS", { ...first, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: head + 3, ack_policy: AckPolicy.All, ack_wait: nanos(30_000) });
    await waitFor("the jump noticed", () => metrics.deliveryGaps >= 1, 20_000);
    await waitCaughtUp(nats, rm);
    for (const id of ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]) expect(rm.getJob(id)?.status, id).toBe("queued");
    rm.close();
    await live.stop();
    const fresh = tempDbPath();
    await rebuildInto(nc, fresh);
    expect(dumpTables(path)).toEqual(dumpTables(fresh));
  });
});
