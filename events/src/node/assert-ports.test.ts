import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { assertPortsFree } from "./nats-server.ts";

describe("assertPortsFree", () => {
  it("names the host, not the port, when the address is the problem (a bad --host was told to choose another port)", async () => {
    await expect(assertPortsFree("not-a-host.invalid", [[14222, "client", "TROUPE_NATS_PORT"]])).rejects.toThrow(/cannot listen on not-a-host\.invalid for its client port \((ENOTFOUND|EAI_AGAIN)\): no such host name; give a local address/);
    await expect(assertPortsFree("10.99.99.99", [[14222, "client", "TROUPE_NATS_PORT"]])).rejects.toThrow(/cannot listen on 10\.99\.99\.99 .*not an address of this machine/);
  });

  it("names the port and how to move it when it is taken", async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      await expect(assertPortsFree("127.0.0.1", [[port, "client", "TROUPE_NATS_PORT"]])).rejects.toThrow(new RegExp(`its client port 127\\.0\\.0\\.1:${port} is not available \\(EADDRINUSE\\).*choose another \\(TROUPE_NATS_PORT`));
      // `troupe up` names its own flag: "(--nats-port, or the command's flag for it)" pointed at a second flag that is not there.
      await expect(assertPortsFree("127.0.0.1", [[port, "NATS client", "--nats-port"]], { owner: "the stack" })).rejects.toThrow(/; or choose another \(--nats-port\)$/);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});
