import { connect } from "@nats-io/transport-node";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";

/**
 * @nats-io/transport-node 3.4.0 left the socket of a connect attempt that timed out before the server's INFO open for
 * as long as the server held it: a service retrying its first connect (`connectAs`: a new `connect()` per try) against
 * a stalled server — a SIGSTOPped nats-server, a proxy whose backend is gone — leaked a file descriptor per attempt. Patched in
 * `patches/` (pnpm-workspace.yaml's patchedDependencies); this pins the patch, so an upgrade that drops it fails here.
 */

/** A server that takes connections and never says a word. */
async function silentServer(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

let silent: Awaited<ReturnType<typeof silentServer>> | undefined;
afterEach(async () => {
  for (const s of silent?.sockets ?? []) s.destroy();
  await new Promise((r) => (silent ? silent.server.close(r) : r(undefined)));
  silent = undefined;
});

describe("a NATS connect attempt that times out before the server's INFO", () => {
  it("closes its socket (one per attempt stayed open while the server held it)", async () => {
    silent = await silentServer();
    for (let i = 0; i < 3; i++) await expect(connect({ servers: `127.0.0.1:${silent.port}`, timeout: 200 })).rejects.toThrow(/timeout/i);
    expect(silent.sockets).toHaveLength(3);
    // Closed by the client: the server side sees each end (without the patch, never).
    const left = silent.sockets;
    await vi.waitFor(() => expect(left.filter((s) => !s.closed)).toHaveLength(0), { timeout: 10_000, interval: 20 });
  });
});
