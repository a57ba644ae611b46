import { createServer } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { startStatusServer, type StatusBody } from "./status-server.ts";

const body: StatusBody = { workerId: "w", name: "W", status: "online", currentJobs: 0, totalProcessed: 0, successRate: 100, uptime: "1s", performance: { cpu: 1, memory: 2, disk: 3 } };
const blocker = createServer();
afterAll(() => new Promise<void>((r) => blocker.close(() => r())));

describe("status server ports", () => {
  it("moves to the next free port when the default is taken, but not when the port was chosen", async () => {
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const taken = (blocker.address() as { port: number }).port;
    const s = await startStatusServer({ host: "127.0.0.1", port: taken, scan: true, status: () => body, healthy: () => true });
    try {
      expect(s.port).toBeGreaterThan(taken);
      expect(await (await fetch(`http://127.0.0.1:${s.port}/status`)).json()).toEqual(body);
      expect((await fetch(`http://127.0.0.1:${s.port}/nope`)).status).toBe(404);
    } finally {
      await s.close();
    }
    await expect(startStatusServer({ host: "127.0.0.1", port: taken, scan: false, status: () => body, healthy: () => true }))
      .rejects.toThrow(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken}.*TROUPE_WORKER_PORT`));
  });
  it("/healthz follows the worker's health", async () => {
    let healthy = true;
    const s = await startStatusServer({ host: "127.0.0.1", port: 0, scan: false, status: () => body, healthy: () => healthy });
    try {
      expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);
      healthy = false;
      expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(503);
    } finally {
      await s.close();
    }
  });
});
