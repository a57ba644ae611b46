import { describe, expect, it } from "vitest";
import { connectionTitle } from "./connection-title.ts";

const url = "ws://example.test:9222";

describe("connectionTitle", () => {
  it("says where the page is live from", () => {
    expect(connectionTitle("live", url, "an old error")).toBe(`Live: the NATS WebSocket at ${url}, as the read-only live user`);
  });

  it("says why it is offline, and what to check when the browser gives no reason", () => {
    expect(connectionTitle("offline", url, "connection refused")).toBe(`Offline: could not connect to the NATS WebSocket at ${url}: connection refused; trying again every 2 s`);
    expect(connectionTitle("offline", url, "'Authorization Violation'")).toBe(`Offline: could not connect to the NATS WebSocket at ${url}: 'Authorization Violation'; trying again every 2 s; reload the page if NATS's credentials changed`);
    for (const empty of ["", "  ", undefined]) {
      expect(connectionTitle("offline", url, empty)).toMatch(/^Offline: could not connect to the NATS WebSocket at ws:\/\/example\.test:9222 \(the browser gives no reason: is nats-server's websocket port reachable from this browser\?\)/);
    }
  });

  it("names the server while connecting and reconnecting", () => {
    expect(connectionTitle("connecting", undefined, undefined)).toBe("Connecting to the NATS WebSocket");
    expect(connectionTitle("reconnecting", url, "stale connection")).toBe(`Reconnecting to the NATS WebSocket at ${url}: stale connection`);
  });
});
