import { closeConnection, connectAs } from "@troupe/events/node";
import { afterAll, describe, expect, it } from "vitest";
import { startTestNats, type TestNats } from "../harness/index.ts";

/** closeConnection: drain when the server is there, close outright when it is gone (a failed drain leaves nats.js reconnecting forever). */

const servers: TestNats[] = [];
afterAll(async () => {
  await Promise.allSettled(servers.map((s) => s.stop()));
});

describe("closeConnection", () => {
  it("drains a live connection: a message published just before is still delivered", async () => {
    const nats = await startTestNats();
    servers.push(nats);
    const reader = await nats.connect("master", "reader");
    const got: string[] = [];
    const sub = reader.subscribe("_INBOX.close-test", { callback: (e, m) => {
      if (e) throw e;
      got.push(m.string());
    } });
    await reader.flush();
    const nc = await connectAs({ url: nats.url, role: "master", dataDir: nats.dataDir, name: "closing", env: {} });
    nc.publish("_INBOX.close-test", "last words");
    await closeConnection(nc);
    expect(nc.isClosed()).toBe(true);
    await reader.flush();
    sub.unsubscribe();
    expect(got).toEqual(["last words"]);
  });

  it("closes a connection whose server is gone, instead of leaving it reconnecting", async () => {
    const nats = await startTestNats();
    servers.push(nats);
    const nc = await connectAs({ url: nats.url, role: "master", dataDir: nats.dataDir, name: "orphaned", env: {} });
    nc.subscribe("anything", { callback: () => {} });
    const disconnected = (async () => {
      for await (const s of nc.status()) if (s.type === "disconnect") return;
    })();
    await nats.server.stop("SIGKILL");
    await disconnected;
    const warnings: string[] = [];
    const log = { warn: (m: string) => warnings.push(m) } as unknown as NonNullable<NonNullable<Parameters<typeof closeConnection>[1]>["log"]>;
    await closeConnection(nc, { log, timeoutMs: 2000 });
    expect(nc.isClosed()).toBe(true);
    expect(warnings.join("\n")).toMatch(/not drained .*closing it/);
  });
});
