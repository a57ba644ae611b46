import { jetstream } from "@nats-io/jetstream";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type RunningMaster } from "../src/main.ts";
import { FAST, jobIdOf, submit } from "./helpers.ts";

// What anyone allowed to publish can make the master log is logged at most 10 times a minute per kind, and counted
// in full: one line each filled the master's log (and its disk) as fast as a flood came.
let nats: TestNats;
let master: RunningMaster;
const lines: { msg: string; leftOut?: number }[] = [];
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  const log = pino({ level: "warn" }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string; leftOut?: number }) });
  master = await startMaster(await nats.connect("master", "m-flood"), { ...FAST, id: "m-flood" }, log);
  await waitFor("m-flood to lead", () => master.master.isLeader, 20_000);
});
afterAll(async () => {
  await master?.stop();
  await nats?.stop();
});

const logged = (msg: RegExp) => lines.filter((l) => msg.test(l.msg));

describe("a flood of messages the master must skip", () => {
  it("requests with a foreign reply subject: all dropped and counted, 10 logged", async () => {
    const ui = await nats.connect("ui");
    try {
      for (let i = 0; i < 40; i++) ui.publish("troupe.rpc.jobs.submit", "{}", { reply: `troupe.evt.job.j-flood-${i}.cancelled` });
      // Answered after them: the master takes one connection's requests in order.
      jobIdOf(await submit(ui, { url: "https://example.com" }));
      expect(master.master.counters.droppedRequests).toBe(40);
      expect(logged(/^request dropped/)).toHaveLength(10);
    } finally {
      await ui.close();
    }
  });

  it("invalid heartbeats: all skipped and counted, 10 logged", async () => {
    const worker = await nats.connect("worker", "w-flood");
    try {
      const before = master.master.counters.invalidMessages;
      const js = jetstream(worker);
      for (let i = 0; i < 30; i++) await js.publish("troupe.hb.w-flood", new TextEncoder().encode(JSON.stringify({ junk: i })));
      await waitFor("the master to skip the 30 heartbeats", () => master.master.counters.invalidMessages - before === 30, 10_000);
      expect(logged(/^skipping an invalid heartbeat/)).toHaveLength(10);
    } finally {
      await worker.close();
    }
  });
});
