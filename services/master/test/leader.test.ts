import { Writable } from "node:stream";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connectAs, storeNames } from "@troupe/events/node";
import { startLatencyProxy, startTestNats, waitFor, type LatencyProxy, type TestNats } from "@troupe/tests/harness";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseLease } from "@troupe/events";
import { LeaderLease, type LeaderState } from "../src/leader.ts";

/**
 * The leader lease over a link whose answers come late (a cluster failover,
 * a congested network): a renewal that times out is no refusal, and one that
 * was stored without its answer arriving is the master's own. Before, either
 * cost the master its leadership (and a new epoch) although nobody else held
 * the lease.
 */

let nats: TestNats;
let link: LatencyProxy;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  link = await startLatencyProxy(nats.url);
});
afterAll(async () => {
  await link?.close();
  await nats?.stop();
});

/** A pino logger whose lines the test can read. */
function capturedLog() {
  const lines: { msg: string }[] = [];
  const log = pino({ level: "info" }, new Writable({ write(chunk, _e, cb) { lines.push(JSON.parse(String(chunk)) as { msg: string }); cb(); } }));
  return { log, lines, saw: (text: string) => lines.some((l) => l.msg.includes(text)) };
}

describe("the leader lease through late answers", () => {
  it("keeps leadership and its epoch through renewals that time out, and goes on from the one that was stored unanswered", async () => {
    const nc = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-lease-slow", env: {} });
    const direct = await nats.connect("master", "lease-reader");
    // The lease's own KV waits 300 ms for an answer; renewals every 1⅔ s (a third of the 5 s lease). After the timed-out
    // renewal the next good one comes two renewals after the last: the lease leaves that a loaded machine's stalls.
    const kv = await new Kvm(jetstream(nc, { timeout: 300 })).open(storeNames("troupe").masterKv);
    const reader = await new Kvm(direct).open(storeNames("troupe").masterKv);
    const changes: LeaderState[] = [];
    const { log, saw } = capturedLog();
    const lease = new LeaderLease(kv, "m-lease-slow", 5000, log, (s) => changes.push(s), "leader-slow-link");
    try {
      lease.start(() => true);
      await waitFor("leadership", () => changes.length === 1, 10_000);
      const epoch = changes[0]?.epoch as number;
      expect(changes).toEqual([{ leader: true, epoch, holder: "m-lease-slow" }]);

      // Answers now take 700 ms: the next renewal is stored, but its answer comes after the 300 ms timeout.
      link.delayMs = 700;
      await waitFor("a renewal that timed out", () => saw("renewal not answered"), 10_000);
      link.delayMs = 0;
      // The one after it names the revision before the stored one: refused, and recognised as this master's own.
      await waitFor("the stored renewal to be taken up", () => saw("an unanswered renewal had been stored"), 10_000);
      const adopted = (await reader.get("leader-slow-link"))?.revision as number;
      await waitFor("a renewal after the link recovered", async () => ((await reader.get("leader-slow-link"))?.revision ?? 0) > adopted, 10_000);

      expect(changes).toEqual([{ leader: true, epoch, holder: "m-lease-slow" }]);
      expect(lease.currentEpoch()).toBe(epoch);
      expect(parseLease((await reader.get("leader-slow-link"))?.string() ?? "")?.holder).toBe("m-lease-slow");
    } finally {
      link.delayMs = 0;
      await lease.stop();
      await nc.close();
    }
  });

  it("still gives up a lease that lapses while no renewal is answered", async () => {
    const nc = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-lease-lapse", env: {} });
    const kv = await new Kvm(jetstream(nc, { timeout: 300 })).open(storeNames("troupe").masterKv);
    const changes: LeaderState[] = [];
    const { log } = capturedLog();
    const lease = new LeaderLease(kv, "m-lease-lapse", 1500, log, (s) => changes.push(s), "leader-lapse");
    try {
      lease.start(() => true);
      await waitFor("leadership", () => changes.length === 1, 10_000);
      link.delayMs = 5000;
      await waitFor("the lease to lapse", () => changes.length === 2, 10_000);
      expect(changes[1]).toEqual({ leader: false, epoch: 0 });
      expect(lease.currentEpoch()).toBe(0);
    } finally {
      link.delayMs = 0;
      await lease.stop(false);
      await nc.close();
    }
  });

  it("two processes given the same master id never both lead: the second waits for the lease to lapse, and neither takes the other's renewal for its own", async () => {
    const nc = await nats.connect("master", "lease-twins");
    const kv = await new Kvm(nc).open(storeNames("troupe").masterKv);
    const a: LeaderState[] = [];
    const b: LeaderState[] = [];
    const first = new LeaderLease(kv, "m-twin", 1500, capturedLog().log, (s) => a.push(s), "leader-twins");
    const second = new LeaderLease(kv, "m-twin", 1500, capturedLog().log, (s) => b.push(s), "leader-twins");
    // Ticks by hand. The first leads; the second sees its own id on an unexpired lease, but not its own token: it waits.
    await first.tick(() => true);
    await second.tick(() => true);
    expect(a).toEqual([{ leader: true, epoch: expect.any(Number), holder: "m-twin" }]);
    expect(b).toEqual([]);
    await first.tick(() => true); // renews
    expect(first.currentEpoch()).toBe(a[0]?.epoch);
    // The first stops renewing (paused, cut off); once its lease has lapsed the second takes it.
    await waitFor("the first lease to lapse", async () => {
      await second.tick(() => true);
      return b.length === 1;
    }, 10_000);
    expect(b[0]).toEqual({ leader: true, epoch: expect.any(Number), holder: "m-twin" });
    // The first comes back: its renewal is refused, and the stored value, though it names "m-twin", is not its own. It steps down.
    await first.tick(() => true);
    expect(a[1]).toEqual({ leader: false, epoch: 0 });
    expect(first.currentEpoch()).toBe(0);
    expect(second.currentEpoch()).toBe(b[0]?.epoch);
    await second.stop();
  });

  it("a standby judges a lease by how long its revision stands, not by the holder's clock: 60 s behind it takes over a dead leader's within ~1⅓ leases, 60 s ahead it leaves a live leader's alone", async () => {
    const nc = await nats.connect("master", "lease-skew");
    const kv = await new Kvm(nc).open(storeNames("troupe").masterKv);
    // Renewals every second: a stall of this process under ~2 s is no lapse of the leader's own (at 1.5 s, ~1 s was).
    const LEASE = 3000;
    const lead: LeaderState[] = [];
    const ahead: LeaderState[] = [];
    const behind: LeaderState[] = [];
    const leader = new LeaderLease(kv, "m-on-time", LEASE, capturedLog().log, (s) => lead.push(s), "leader-skew");
    const early = new LeaderLease(kv, "m-ahead", LEASE, capturedLog().log, (s) => ahead.push(s), "leader-skew", () => Date.now() + 60_000);
    const late = new LeaderLease(kv, "m-behind", LEASE, capturedLog().log, (s) => behind.push(s), "leader-skew", () => Date.now() - 60_000);
    await leader.tick(() => true);
    expect(lead).toEqual([{ leader: true, epoch: expect.any(Number), holder: "m-on-time" }]);
    // Three leases of renewals every third of one, the standby ticking as often: the one ahead never takes it.
    const until = Date.now() + 3 * LEASE;
    while (Date.now() < until) {
      await leader.tick(() => true);
      await early.tick(() => true);
      await new Promise((r) => setTimeout(r, LEASE / 3));
    }
    expect(ahead).toEqual([]);
    expect(lead).toHaveLength(1);
    // The leader dies (no renewal, no release): the one behind takes over after about a lease, not after its 60 s.
    const died = Date.now();
    await waitFor("the standby behind to lead", async () => {
      await late.tick(() => true);
      return behind.length === 1;
    }, 30_000, LEASE / 3);
    // About a lease plus a tick and the KV's round trips, which a loaded machine stretched past 2 leases; far from 60 s.
    expect(Date.now() - died).toBeLessThan(20_000);
    expect(behind[0]).toEqual({ leader: true, epoch: expect.any(Number), holder: "m-behind" });
    await late.stop();
    await early.stop();
    await nc.close();
  }, 60_000);

  it("a master started after the leader died takes over at its first look when it knows the server's clock (it waited a full lease), and leaves a live leader's alone", async () => {
    const nc = await nats.connect("master", "lease-late-start");
    const kv = await new Kvm(nc).open(storeNames("troupe").masterKv);
    const LEASE = 1500;
    const lead: LeaderState[] = [];
    const leader = new LeaderLease(kv, "m-first", LEASE, capturedLog().log, (s) => lead.push(s), "leader-late-start");
    await leader.tick(() => true);
    expect(lead).toHaveLength(1);
    // Renewed while alive: a newcomer that knows the server's clock (this process's: the same machine) leaves it.
    const watcher: LeaderState[] = [];
    const live = new LeaderLease(kv, "m-watcher", LEASE, capturedLog().log, (s) => watcher.push(s), "leader-late-start");
    live.serverNow = () => Date.now();
    for (let i = 0; i < 6; i++) {
      await leader.tick(() => true);
      await live.tick(() => true);
      await new Promise((r) => setTimeout(r, LEASE / 3));
    }
    expect(watcher).toEqual([]);
    // The leader dies; two leases later two masters start. The one without the server's clock waits; the other leads at once.
    await new Promise((r) => setTimeout(r, 2 * LEASE));
    const blind: LeaderState[] = [];
    const knowing: LeaderState[] = [];
    const noClock = new LeaderLease(kv, "m-blind", LEASE, capturedLog().log, (s) => blind.push(s), "leader-late-start");
    noClock.serverNow = () => undefined;
    await noClock.tick(() => true);
    expect(blind).toEqual([]);
    const withClock = new LeaderLease(kv, "m-knowing", LEASE, capturedLog().log, (s) => knowing.push(s), "leader-late-start");
    withClock.serverNow = () => Date.now();
    await withClock.tick(() => true);
    expect(knowing).toEqual([{ leader: true, epoch: expect.any(Number), holder: "m-knowing" }]);
    await Promise.all([withClock.stop(), noClock.stop(), live.stop()]);
    await nc.close();
  });

  it("a lease won by a request still on its way when stop() gave up waiting is given back, and the stopped process never leads", async () => {
    const nc = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-lease-stopping", env: {} });
    const direct = await nats.connect("master", "lease-reader-2");
    const kv = await new Kvm(jetstream(nc, { timeout: 10_000 })).open(storeNames("troupe").masterKv);
    const reader = await new Kvm(direct).open(storeNames("troupe").masterKv);
    const changes: LeaderState[] = [];
    const { log } = capturedLog();
    const lease = new LeaderLease(kv, "m-lease-stopping", 30_000, log, (s) => changes.push(s), "leader-stopping");
    // Every answer takes 1.5 s: the acquire (a read, then a create) outlasts stop()'s 2 s wait.
    link.delayMs = 1500;
    try {
      lease.start(() => true);
      await lease.stop();
      expect(changes).toEqual([]);
      // The create lands after stop() returned; the lease is then given back (expiry 0), and nobody was told "leader".
      await waitFor("the late lease given back", async () => {
        const e = await reader.get("leader-stopping");
        return e?.operation === "PUT" && parseLease(e.string())?.expiresAtMs === 0;
      }, 20_000, 100);
      expect(changes).toEqual([]);
      expect(lease.currentEpoch()).toBe(0);
    } finally {
      link.delayMs = 0;
      await nc.close();
    }
  });
});
