import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { createEvent, type TroupeEvent } from "@troupe/events";
import { connectAs, ensureCredentials, ensureSelfSignedTls, freePort, publishEvent, startNatsServer, type RunningNatsServer } from "@troupe/events/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

type Logger = NonNullable<Parameters<typeof connectAs>[0]["log"]>;
import { startTestCluster, startTestNats, waitFor, type TestCluster, type TestNats } from "../harness/index.ts";

/**
 * NATS over TLS: workers on other networks send their password, and receive
 * their assignments, over it. Real nats-server, real certificates (openssl).
 */

/** The first line a NATS server sends a raw TCP client: its INFO. */
async function rawInfo(port: number): Promise<Record<string, unknown>> {
  const s = tcpConnect(port, "127.0.0.1");
  try {
    const line = await new Promise<string>((res, rej) => {
      let buf = "";
      s.on("data", (b) => {
        buf += b.toString();
        const i = buf.indexOf("\r\n");
        if (i >= 0) res(buf.slice(0, i));
      });
      s.on("error", rej);
    });
    return JSON.parse(line.replace(/^INFO /, "")) as Record<string, unknown>;
  } finally {
    s.destroy();
  }
}

interface Conn {
  name: string;
  tls_version?: string;
}
const connz = async (monitorUrl: string) => ((await (await fetch(`${monitorUrl}/connz?limit=1000`)).json()) as { connections: Conn[] }).connections;

describe("a TLS server", () => {
  let nats: TestNats;
  beforeAll(async () => {
    nats = await startTestNats({ init: true, tls: true });
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it("requires TLS of every client: its INFO says so, and a client that speaks plain NATS is cut off", async () => {
    const port = Number(new URL(nats.url).port);
    expect(await rawInfo(port)).toMatchObject({ tls_required: true });
    const s = tcpConnect(port, "127.0.0.1");
    let got = "";
    s.on("data", (b) => (got += b.toString()));
    s.on("error", () => {});
    s.write(`CONNECT {"user":"${nats.credentials.ui.user}","pass":"${nats.credentials.ui.password}","verbose":false}\r\nPING\r\n`);
    await new Promise((r) => s.on("close", r));
    expect(got).not.toMatch(/PONG/);
  });

  it("a client given the CA connects over TLS and appends to the log", async () => {
    const nc = await connectAs({ url: nats.url, ca: nats.caFile, role: "worker", dataDir: nats.dataDir, name: "tls-worker", env: {} });
    try {
      const e = createEvent("job.started", { jobId: "job-tls", workerId: "wn-tls", attempt: 1 }, "wn-tls") as TroupeEvent;
      const ack = await publishEvent(jetstream(nc), e);
      expect(ack.seq).toBeGreaterThan(0);
      const mine = (await connz(nats.monitorUrl)).find((c) => c.name === "tls-worker");
      expect(mine?.tls_version).toMatch(/^1\.[23]$/);
    } finally {
      await nc.close();
    }
  });

  it("a client without the CA is refused by its own certificate check, and told to set TROUPE_NATS_CA", async () => {
    await expect(connectAs({ url: nats.url, role: "worker", dataDir: nats.dataDir, name: "no-ca", env: {} })).rejects.toThrow(/set TROUPE_NATS_CA/);
  });

  it("a client given another CA is refused (a server pretending to be this one cannot take the password)", async () => {
    const other = mkdtempSync(join(tmpdir(), "troupe-tls-other-"));
    try {
      const { caFile } = ensureSelfSignedTls(other, ["127.0.0.1"]);
      await expect(connectAs({ url: nats.url, ca: caFile, role: "worker", dataDir: nats.dataDir, name: "wrong-ca", env: {} })).rejects.toThrow(/not signed by/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("a service waiting for its first connection says why it cannot connect (no silent wait), and stops waiting when told", async () => {
    const warnings: string[] = [];
    const log = { warn: (_: unknown, msg: string) => warnings.push(msg), info: () => {} } as unknown as Logger;
    const abort = new AbortController();
    const waiting = connectAs({ url: nats.url, role: "worker", dataDir: nats.dataDir, name: "waiting", env: {}, waitOnFirstConnect: true, log, abort: abort.signal });
    await waitFor("a warning", () => warnings.length > 0);
    expect(warnings[0]).toMatch(/cannot connect to NATS .* set TROUPE_NATS_CA .*; trying again$/);
    abort.abort();
    await expect(waiting).rejects.toThrow(/gave up connecting .*TROUPE_NATS_CA/);
  });

  it("a service started before its server connects once the server is up, having said what it waits for", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "troupe-tls-late-"));
    const warnings: string[] = [];
    const log = { warn: (_: unknown, msg: string) => warnings.push(msg), info: () => {} } as unknown as Logger;
    const credentials = ensureCredentials(dataDir);
    const port = await freePort();
    const waiting = connectAs({ url: `nats://127.0.0.1:${port}`, role: "worker", dataDir, name: "late", env: {}, waitOnFirstConnect: true, log });
    let server: RunningNatsServer | undefined;
    try {
      await waitFor("a warning", () => warnings.length > 0);
      expect(warnings[0]).toMatch(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+ as worker \(worker\): connection refused; trying again$/);
      server = await startNatsServer({ dataDir, credentials, host: "127.0.0.1", port, wsHost: "127.0.0.1", wsPort: await freePort(), monitorPort: await freePort(), onLog: () => {} });
      const nc = await waiting;
      expect(nc.isClosed()).toBe(false);
      await nc.close();
    } finally {
      await server?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("the certificate must name the host dialled: for an IP URL the IP, not just any name (every self-signed one names localhost)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-tls-names-"));
    let other: RunningNatsServer | undefined;
    try {
      const credentials = ensureCredentials(dir);
      // Signed by the right CA, but for other hosts (and localhost).
      const tls = ensureSelfSignedTls(dir, ["localhost", "10.9.9.9", "elsewhere.example"]);
      const port = await freePort();
      other = await startNatsServer({ dataDir: dir, credentials, host: "127.0.0.1", port, wsHost: "127.0.0.1", wsPort: await freePort(), monitorPort: await freePort(), tls, onLog: () => {} });
      const as = (url: string) => connectAs({ url, ca: tls.caFile, role: "ui", dataDir: dir, name: "names", env: {}, timeoutMs: 3000 });
      for (const url of [`nats://127.0.0.1:${port}`, `tls://127.0.0.1:${port}`]) {
        await expect(as(url)).rejects.toThrow(/IP: 127\.0\.0\.1 is not in the cert's list.*does not name the host in the URL/);
      }
      const byName = await as(`nats://localhost:${port}`);
      await byName.close();
    } finally {
      await other?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an unreadable CA file is a clear error naming TROUPE_NATS_CA", async () => {
    await expect(connectAs({ url: nats.url, ca: join(nats.dataDir, "nope.crt"), role: "worker", dataDir: nats.dataDir, name: "bad-ca", env: {} }))
      .rejects.toThrow(/TROUPE_NATS_CA: cannot read .*nope\.crt/);
  });
});

describe("a client that asks for TLS never sends its password to a server without it", () => {
  let fake: Server;
  let port: number;
  const received: string[] = [];
  const sockets: Socket[] = [];
  beforeAll(async () => {
    // Speaks just enough NATS to be taken for a server offering no TLS, and records what clients send.
    fake = createServer((s) => {
      sockets.push(s);
      s.on("data", (b) => received.push(b.toString()));
      s.on("error", () => {});
      s.write(`INFO {"server_id":"FAKE","version":"2.9.10","proto":1,"host":"127.0.0.1","port":0,"max_payload":1048576,"auth_required":true}\r\n`);
    });
    await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r));
    port = (fake.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => fake.close(r));
  });

  it("with TROUPE_NATS_CA, and with a tls:// URL (any case, anywhere in the list)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "troupe-tls-fake-"));
    try {
      ensureCredentials(dataDir);
      const { caFile } = ensureSelfSignedTls(dataDir, ["127.0.0.1"]);
      await expect(connectAs({ url: `nats://127.0.0.1:${port}`, ca: caFile, role: "worker", dataDir, name: "x", env: {}, timeoutMs: 2000 }))
        .rejects.toThrow(/this server offers none/);
      await expect(connectAs({ url: `tls://127.0.0.1:${port}`, role: "worker", dataDir, name: "x", env: {}, timeoutMs: 2000 }))
        .rejects.toThrow(/this server offers none/);
      await expect(connectAs({ url: `nats://127.0.0.1:${port}, TLS://127.0.0.1:${port}`, role: "worker", dataDir, name: "x", env: {}, timeoutMs: 2000 }))
        .rejects.toThrow(/this server offers none/);
      expect(sockets.length).toBeGreaterThanOrEqual(3);
      expect(received.join("")).not.toMatch(/CONNECT|pass/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("a TLS cluster", () => {
  let cluster: TestCluster;
  let rogue: ChildProcess | undefined;
  const rogueLog: string[] = [];
  const routes = async (monitorUrl: string) => ((await (await fetch(`${monitorUrl}/routez`)).json()) as { num_routes: number }).num_routes;
  beforeAll(async () => {
    cluster = await startTestCluster({ size: 2, tls: true, init: true });
  });
  afterAll(async () => {
    rogue?.kill("SIGKILL");
    await cluster?.stop();
  });

  it("members with certificates of the cluster's CA route to each other over TLS, and replicate the log", async () => {
    await waitFor("both members routed", async () => (await routes(cluster.nodes[0]!.monitorUrl)) === 1 && (await routes(cluster.nodes[1]!.monitorUrl)) === 1);
    const conf = readFileSync(join(cluster.dataDir, "node-0", "nats-server.conf"), "utf8");
    expect(conf).toMatch(/cluster \{[\s\S]*tls \{[\s\S]*ca_file: "[^"]*node-0\/tls\/ca\.crt"[\s\S]*verify: true/);
    const nc = await cluster.connect("worker");
    const e = createEvent("job.started", { jobId: "job-tls-r2", workerId: "wn-tls", attempt: 1 }, "wn-tls") as TroupeEvent;
    expect((await publishEvent(jetstream(nc), e)).seq).toBeGreaterThan(0);
  });

  it("a server with a certificate of another CA (and the route credential) cannot join", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-tls-rogue-"));
    const own = ensureSelfSignedTls(dir, ["127.0.0.1"]);
    const route = readFileSync(join(cluster.dataDir, "credentials.env"), "utf8");
    const user = /TROUPE_NATS_ROUTE_USER=(.*)/.exec(route)![1]!, pass = /TROUPE_NATS_ROUTE_PASSWORD=(.*)/.exec(route)![1]!;
    const [port, clusterPort, monitorPort] = [await freePort(), await freePort(), await freePort()];
    const conf = join(dir, "rogue.conf");
    const target = new URL(cluster.nodes[0]!.clusterUrl);
    writeFileSync(conf, [
      `listen: "127.0.0.1:${port}"`, `http: "127.0.0.1:${monitorPort}"`,
      `cluster { name: "${cluster.clusterName}", listen: "127.0.0.1:${clusterPort}"`,
      `  routes: ["nats://${user}:${pass}@127.0.0.1:${target.port}"]`,
      `  tls { cert_file: "${own.certFile}", key_file: "${own.keyFile}", ca_file: "${own.caFile}", verify: true, timeout: 5 } }`,
    ].join("\n"));
    rogue = spawn("nats-server", ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
    const feed = (b: Buffer) => rogueLog.push(...b.toString("utf8").split("\n").filter(Boolean));
    rogue.stdout?.on("data", feed);
    rogue.stderr?.on("data", feed);
    try {
      await waitFor("the rogue's TLS handshake refused", () => rogueLog.some((l) => /TLS route handshake error: x509: certificate signed by unknown authority/.test(l)), 15_000, 50).catch((e: Error) => {
        throw new Error(`${e.message}\n${rogueLog.join("\n")}`);
      });
      expect(await routes(`http://127.0.0.1:${monitorPort}`)).toBe(0);
      expect(await routes(cluster.nodes[0]!.monitorUrl)).toBe(1);
    } finally {
      rogue.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
