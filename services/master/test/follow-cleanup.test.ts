import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import { connectAs, createLogger, storeNames } from "@troupe/events/node";
import { startLatencyProxy, startTestNats, waitFor, type LatencyProxy, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { follow } from "../src/follow.ts";

/**
 * A follower made again (missed heartbeats, a reconnect) deletes the consumer it replaces. A leak soak (2026-11-30)
 * saw a starved master remake its consumers 29 times an hour, each old one left on the server with its pending
 * messages piling up until its 5-minute inactivity threshold: up to 10 consumers where 2 were in use.
 */

let nats: TestNats;
let link: LatencyProxy;
let nc: NatsConnection;
const log = createLogger("master", process.env.TROUPE_LOG_LEVEL ?? "silent");
const stream = storeNames("troupe").events;

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  link = await startLatencyProxy(nats.url);
  nc = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-follow-cleanup", env: {} });
});

afterAll(async () => {
  link?.thaw();
  await nc?.close();
  await link?.close();
  await nats?.stop();
});

/** The consumers on the server once the follower's raced creates that lost are deleted (not awaited by follow()): a
 *  freeze right after follow() held those deletes, and they stayed. */
async function settledConsumers(): Promise<string[]> {
  return waitFor("one consumer left of the raced creates", async () => {
    const names = await consumerNames();
    return names.length === 1 ? names : undefined;
  }, 10_000, 50);
}

async function consumerNames(): Promise<string[]> {
  const jsm = await (await nats.js("master")).js.jetstreamManager();
  const names: string[] = [];
  for await (const c of jsm.consumers.list(stream)) names.push(c.name);
  return names;
}

describe("a follower made again", () => {
  it("stopped while it is being made again, it leaves no consumer on the server (the new one stayed, following for a stopped master)", async () => {
    const seeing: boolean[] = [];
    const f = await follow(nc, jetstream(nc), { stream, deliver: "all", onMessage: () => {}, onCaughtUp: () => {}, onSeeing: (on) => seeing.push(on), log });
    try {
      await settledConsumers();
      link.freeze();
      // The reopen has begun: its creates wait in the frozen link, shorter than their timeout once it thaws.
      await waitFor("the follower to notice", () => seeing.includes(false), 15_000, 50);
      await f.stop();
    } finally {
      link.thaw();
    }
    await waitFor("no consumer left after the stop", async () => (await consumerNames()).length === 0, 15_000, 100);
  }, 60_000);

  it("deletes the consumers whose creates timed out here but were made on the server (they stayed 5 minutes)", async () => {
    const lines: string[] = [];
    const watched = { ...log, warn: (o: unknown, msg?: string) => void lines.push(String(msg ?? o)) } as unknown as typeof log;
    // The creates wait in the link past their timeout (1.5 s); let through, the server makes them all the same.
    link.freezeWhenClientSends("$JS.API.CONSUMER.CREATE");
    const following = follow(nc, jetstream(nc), { stream, deliver: "all", onMessage: () => {}, onCaughtUp: () => {}, log: watched });
    let f: Awaited<typeof following> | undefined;
    try {
      await waitFor("the creates timed out", () => lines.some((l) => /could not follow the stream yet/.test(l)), 30_000, 50);
      link.thaw();
      f = await following;
      // Only the consumer it follows with: the three made late are deleted by name.
      await settledConsumers();
    } finally {
      link.thaw();
      await (f ?? (await following)).stop();
    }
    await waitFor("no consumer left after the stop", async () => (await consumerNames()).length === 0, 10_000, 100);
  }, 60_000);

  it("deletes the consumer it replaced, and its own when stopped", async () => {
    const seeing: boolean[] = [];
    const f = await follow(nc, jetstream(nc), { stream, deliver: "all", onMessage: () => {}, onCaughtUp: () => {}, onSeeing: (on) => seeing.push(on), log });
    try {
      const [first] = await settledConsumers();
      expect(first).toBeDefined();
      // Frozen past two idle heartbeats (1 s each): the follower makes its consumer again once the link is back.
      link.freeze();
      await waitFor("the follower to notice", () => seeing.includes(false), 15_000, 50);
      link.thaw();
      await waitFor("the follower back", () => seeing.at(-1) === true, 15_000, 50);
      await waitFor("only the new consumer left on the server", async () => {
        const names = await consumerNames();
        return names.length === 1 && names[0] !== first;
      }, 10_000, 100);
    } finally {
      await f.stop();
    }
    await waitFor("no consumer left after the stop", async () => (await consumerNames()).length === 0, 10_000, 100);
  }, 60_000);

});
