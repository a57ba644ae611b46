import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tunnelThrough, upstreamFromSpec } from "../src/upstream-proxy.ts";
import { proxyTls, startHttpProxy, startSocksProxy, type TestProxy } from "./proxies.ts";

/**
 * The worker's side of a job's proxy, against real proxies on loopback: each
 * kind carries a tunnel to a target with the job's credentials, and says
 * clearly when the proxy refuses them.
 */

let target: Server;
let targetPort = 0;
const proxies: TestProxy[] = [];

beforeAll(async () => {
  target = createServer((req, res) => res.end(`hello ${req.url}`));
  await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
  targetPort = (target.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const p of proxies) await p.close();
  target.close();
});

const keep = <T extends TestProxy>(p: T) => (proxies.push(p), p);

/** One GET through an open tunnel: the target's answer body. */
function get(s: Duplex, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    s.on("data", (c: Buffer) => (text += c.toString()));
    s.once("end", () => resolve(text.slice(text.indexOf("\r\n\r\n") + 4)));
    s.once("error", reject);
    s.write(`GET ${path} HTTP/1.1\r\nHost: target\r\nConnection: close\r\n\r\n`);
  });
}

describe("tunnels through the job's proxy", () => {
  it("HTTP: CONNECT with the job's Basic credentials; wrong ones are named as such", async () => {
    const p = keep(await startHttpProxy({ user: "u", password: "pw" }));
    const s = await tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"], "u", "pw"), { host: "127.0.0.1", port: targetPort }, 5000);
    expect(await get(s, "/http")).toBe("hello /http");
    expect(p.carried).toEqual([`127.0.0.1:${targetPort}`]);
    await expect(tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"], "u", "nope"), { host: "127.0.0.1", port: targetPort }, 5000))
      .rejects.toThrow(/asked for credentials \(407\) and refused the job's/);
    await expect(tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"]), { host: "127.0.0.1", port: targetPort }, 5000))
      .rejects.toThrow(/asked for credentials \(407\); the job gives none/);
  });

  it("HTTP: logs in with Digest when the proxy asks for it (once per job; later tunnels answer at once), and says so when it offers neither Basic nor Digest", async () => {
    const p = keep(await startHttpProxy({ user: "u", password: "pw", digest: true }));
    const up = upstreamFromSpec(p.url, ["127.0.0.1"], "u", "pw");
    expect(await get(await tunnelThrough(up, { host: "127.0.0.1", port: targetPort }, 5000), "/digest")).toBe("hello /digest");
    expect(p.refused).toBe(1); // the Basic login sent up front, answered with the challenge
    expect(await get(await tunnelThrough(up, { host: "127.0.0.1", port: targetPort }, 5000), "/digest-again")).toBe("hello /digest-again");
    expect(p.refused).toBe(1);
    expect(p.carried).toEqual([`127.0.0.1:${targetPort}`, `127.0.0.1:${targetPort}`]);
    await expect(tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"], "u", "nope"), { host: "127.0.0.1", port: targetPort }, 5000))
      .rejects.toThrow(/asked for credentials \(407\) and refused the job's$/);
    const ntlm = keep(await startHttpProxy({ user: "u", password: "pw", challenge: "NTLM" }));
    await expect(tunnelThrough(upstreamFromSpec(ntlm.url, ["127.0.0.1"], "u", "nope"), { host: "127.0.0.1", port: targetPort }, 5000))
      .rejects.toThrow(/refused the job's \(it offers neither Basic nor a Digest the worker speaks\)/);
  });

  it("HTTPS: the same inside TLS, the proxy's certificate verified", async () => {
    const p = keep(await startHttpProxy({ user: "u", password: "pw", tls: true }));
    const trusted = upstreamFromSpec(`https://proxy.test:${p.port}`, ["127.0.0.1"], "u", "pw", { ca: proxyTls.cert });
    expect(await get(await tunnelThrough(trusted, { host: "127.0.0.1", port: targetPort }, 5000), "/tls")).toBe("hello /tls");
    expect(p.carried).toEqual([`127.0.0.1:${targetPort}`]);
    // Without the private CA the certificate is not trusted: no tunnel, no credentials sent.
    await expect(tunnelThrough(upstreamFromSpec(`https://proxy.test:${p.port}`, ["127.0.0.1"], "u", "pw"), { host: "127.0.0.1", port: targetPort }, 5000))
      .rejects.toThrow(/TLS with the job's proxy https:\/\/proxy\.test:\d+ failed: self.signed certificate/);
    expect(p.carried).toHaveLength(1);
  });

  it("SOCKS5: username/password login, the target's name resolved by the proxy", async () => {
    const p = keep(await startSocksProxy({ version: 5, user: "u", password: "pw", names: { "only-the-proxy-knows.test": "127.0.0.1" } }));
    const s = await tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"], "u", "pw"), { host: "only-the-proxy-knows.test", port: targetPort }, 5000);
    expect(await get(s, "/socks5")).toBe("hello /socks5");
    expect(p.carried).toEqual([`only-the-proxy-knows.test:${targetPort}`]);
    await expect(tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"], "u", "nope"), { host: "127.0.0.1", port: targetPort }, 5000))
      .rejects.toThrow(/refused the job's credentials/);
    await expect(tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"]), { host: "127.0.0.1", port: targetPort }, 5000))
      .rejects.toThrow(/accepts none of the offered logins \(none: it wants credentials and the job gives none\)/);
    expect(p.refused).toBe(2);
  });

  it("SOCKS5: a host name too long for its one length byte is refused before anything is sent", async () => {
    const p = keep(await startSocksProxy({ version: 5 }));
    const long = `${"a".repeat(63)}.`.repeat(4) + "test";
    await expect(tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"]), { host: long, port: targetPort }, 5000))
      .rejects.toThrow(/SOCKS5 cannot carry a host name longer than 255 bytes/);
    expect(p.carried).toEqual([]);
  });

  it("SOCKS5 without credentials, and to an IP literal", async () => {
    const p = keep(await startSocksProxy({ version: 5 }));
    expect(await get(await tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"]), { host: "127.0.0.1", port: targetPort }, 5000), "/open")).toBe("hello /open");
    expect(p.carried).toEqual([`127.0.0.1:${targetPort}`]);
  });

  it("SOCKS4: the checked IPv4 address is what it gets, never the name", async () => {
    const p = keep(await startSocksProxy({ version: 4 }));
    const s = await tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"]), { host: "checked.test", port: targetPort, ipv4: async () => "127.0.0.1" }, 5000);
    expect(await get(s, "/socks4")).toBe("hello /socks4");
    expect(p.carried).toEqual([`127.0.0.1:${targetPort}`]);
    await expect(tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"]), { host: "v6-only.test", port: targetPort, ipv4: async () => undefined }, 5000))
      .rejects.toThrow(/SOCKS4 needs an IPv4 address and v6-only\.test has none/);
  });

  it("names an unreachable proxy", async () => {
    const p = keep(await startSocksProxy({ version: 5 }));
    await p.close();
    await expect(tunnelThrough(upstreamFromSpec(p.url, ["127.0.0.1"]), { host: "127.0.0.1", port: targetPort }, 5000))
      .rejects.toThrow(new RegExp(`cannot reach the job's proxy socks5://127\\.0\\.0\\.1:${p.port}: connect ECONNREFUSED`));
  });
});
