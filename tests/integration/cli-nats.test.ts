import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createEvent, type TroupeEvent } from "@troupe/events";
import { connectAs, credentialsPath, ensureCredentials, freePort, publishEvent, workerInboxPrefix } from "@troupe/events/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processAlive, waitFor } from "../harness/index.ts";

const ROOT = resolve(import.meta.dirname, "../..");

/** A `troupe` child process whose output lines can be awaited. */
function troupe(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [join(ROOT, "bin/troupe.mjs"), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const feed = (chunk: Buffer) => {
    output += chunk.toString();
    for (const w of waiters.slice()) {
      const m = output.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  child.stdout.on("data", feed);
  child.stderr.on("data", feed);
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return {
    child,
    exited,
    output: () => output,
    // Generous: a command's start (node + tsx) took over 20 s once on a machine running three test loads at once.
    waitFor(re: RegExp, timeoutMs = 45_000): Promise<string> {
      const m = output.match(re);
      if (m) return Promise.resolve(m[0]);
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`timed out waiting for ${re} in output:\n${output}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => { clearTimeout(t); res(l); } });
        void exited.then((code) => { clearTimeout(t); rej(new Error(`process exited (${code}) before ${re}; output:\n${output}`)); });
      });
    },
  };
}

describe("troupe nats → init → tail (the foundation's done-when)", () => {
  let dataDir: string;
  let env: Record<string, string>;
  let nats: ReturnType<typeof troupe>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "troupe-cli-"));
    const port = await freePort();
    env = {
      TROUPE_DATA_DIR: dataDir, NATS_URL: `nats://127.0.0.1:${port}`,
      TROUPE_NATS_HOST: "127.0.0.1", TROUPE_NATS_PORT: String(port), TROUPE_NATS_WS_HOST: "127.0.0.1",
      TROUPE_NATS_WS_PORT: String(await freePort()), TROUPE_NATS_MONITOR_PORT: String(await freePort()),
    };
    nats = troupe(["nats"], env);
    children.push(nats.child);
    await nats.waitFor(/troupe nats: ready/);
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("generated private credentials for every role", () => {
    const st = statSync(join(dataDir, "credentials.env"));
    expect(st.mode & 0o777).toBe(0o600);
  });

  it("init creates the stores, and is idempotent", async () => {
    const first = troupe(["init"], env);
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/stream TROUPE_EVENTS: created/);
    expect(first.output()).toMatch(/kv bucket troupe-master: ready/);
    const second = troupe(["init"], env);
    expect(await second.exited).toBe(0);
    expect(second.output()).toMatch(/stream TROUPE_EVENTS: unchanged/);
  });

  it("tail prints an event published by a client, one readable line", async () => {
    const tail = troupe(["tail"], env);
    children.push(tail.child);
    await tail.waitFor(/following troupe\.evt\.>/);
    const nc = await connectAs({ url: env.NATS_URL!, role: "worker", dataDir, name: "test-publisher" });
    const e = createEvent("job.started", { jobId: "job-tail", workerId: "wn-demo-01", attempt: 1 }, "wn-demo-01") as TroupeEvent;
    await publishEvent(jetstream(nc), e);
    const line = await tail.waitFor(/.*troupe\.evt\.job\.job-tail\.started.*/);
    expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3}  troupe\.evt\.job\.job-tail\.started  job\.started  job=job-tail worker=wn-demo-01 attempt=1$/);
    // an invalid message is shown as such, not dropped silently and not fatal
    const nc2 = await connectAs({ url: env.NATS_URL!, role: "worker", dataDir, name: "test-bad" });
    await jetstream(nc2).publish("troupe.evt.job.job-tail.progress", "{oops");
    expect(await tail.waitFor(/.*job-tail\.progress  INVALID.*/)).toMatch(/INVALID not-json: payload is not JSON/);
    tail.child.kill("SIGINT");
    expect(await tail.exited).toBe(0);
    await nc.close();
    await nc2.close();
  });

  it("tail on a subject its user may not read says so and exits 1 (it printed the violation and waited for ever)", async () => {
    const tail = troupe(["tail", "foo.bar"], env);
    children.push(tail.child);
    expect(await tail.exited).toBe(1);
    expect(tail.output()).toMatch(/troupe tail: .*Permissions Violation for Subscription to "foo\.bar".* — the live user may not read it \(each role's subjects: nats\.conf, docs\/security\.md\); events are troupe\.evt\.>, heartbeats troupe\.hb\.>/);
  });

  it("tail whose reader went away (`troupe tail | head -1`) exits 0 quietly on its next line, not with an EPIPE stack trace", async () => {
    const tail = troupe(["tail", "--since", "1", "--json", "troupe.evt.job.job-tail.>"], env);
    children.push(tail.child);
    await tail.waitFor(/"type":"job\.started"/);
    tail.child.stdout?.destroy(); // the reader closes the pipe, as head does after its line
    const nc = await connectAs({ url: env.NATS_URL!, role: "worker", dataDir, name: "test-epipe" });
    const e = createEvent("job.started", { jobId: "job-tail", workerId: "wn-demo-01", attempt: 2 }, "wn-demo-01") as TroupeEvent;
    await publishEvent(jetstream(nc), e);
    await nc.close();
    expect(await tail.exited).toBe(0);
    expect(tail.output()).not.toMatch(/EPIPE|Error/);
  });

  it("tail --since replays from the stream first, --json prints raw bodies", async () => {
    const tail = troupe(["tail", "--since", "1", "--json", "troupe.evt.job.job-tail.>"], env);
    children.push(tail.child);
    const line = await tail.waitFor(/\{"id":"e[^\n]*"type":"job\.started"[^\n]*\}/);
    expect(JSON.parse(line)).toMatchObject({ type: "job.started", data: { jobId: "job-tail" } });
    tail.child.kill("SIGTERM");
    expect(await tail.exited).toBe(0);
  });

  it("tail --since a sequence past the stream's end says so, then waits", async () => {
    const tail = troupe(["tail", "--since", "999999", "troupe.evt.>"], env);
    children.push(tail.child);
    await tail.waitFor(/TROUPE_EVENTS ends at sequence \d+: nothing to replay before 999999, waiting for it/);
    tail.child.kill("SIGTERM");
    expect(await tail.exited).toBe(0);
  });

  it("worker-user add gives a worker its own user that the running server takes at once; remove cuts it off", async () => {
    const add = troupe(["worker-user", "add", "cli-w1"], env);
    expect(await add.exited).toBe(0);
    expect(add.output()).toMatch(/added worker-cli-w1; nats-server \(pid \d+\) reloaded its users/);
    const lines = Object.fromEntries([...add.output().matchAll(/^(TROUPE_[A-Z_]+)=(.+)$/gm)].map((m) => [m[1], m[2]]));
    expect(lines).toMatchObject({ TROUPE_WORKER_ID: "cli-w1", TROUPE_NATS_WORKER_USER: "worker-cli-w1" });
    const own = await connectAs({ url: env.NATS_URL!, role: "worker", dataDir: "/nonexistent", name: "cli-own", env: lines, inboxPrefix: workerInboxPrefix("cli-w1") });
    const closed = own.closed();
    const list = troupe(["worker-user", "list"], env);
    expect(await list.exited).toBe(0);
    expect(list.output()).toMatch(/^cli-w1\tworker-cli-w1\tpassword set \d{4}-/m);
    const again = troupe(["worker-user", "add", "cli-w1"], env);
    expect(await again.exited).toBe(2);
    expect(again.output()).toMatch(/already has a user \(worker-cli-w1\); --rotate gives it a new password/);
    const bad = troupe(["worker-user", "add", "a.b"], env);
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toMatch(/invalid worker id "a\.b"/);
    const remove = troupe(["worker-user", "remove", "cli-w1"], env);
    expect(await remove.exited).toBe(0);
    expect(remove.output()).toMatch(/removed the user of worker cli-w1; nats-server \(pid \d+\) reloaded its users/);
    expect(String(await closed)).toMatch(/Authorization Violation/i);
    const none = troupe(["worker-user", "remove", "cli-w1"], env);
    expect(await none.exited).toBe(1);
    const elsewhere = troupe(["worker-user", "add", "cli-w2", "--data-dir", join(dataDir, "no-such-dir")], env);
    expect(await elsewhere.exited).toBe(2);
    expect(elsewhere.output()).toMatch(/is not the data dir of a `troupe nats` \(no .*credentials\.env\)/);
    // Seven `troupe` processes one after another (~9 s on a quiet machine): 30 s ran out in a loaded fresh-clone run.
  }, 120_000);

  it("worker-user add run four times at once keeps all four users, each loaded by the server", async () => {
    const runs = ["cc1", "cc2", "cc3", "cc4"].map((id) => ({ id, run: troupe(["worker-user", "add", id], env) }));
    for (const { run } of runs) expect(await run.exited).toBe(0);
    const list = troupe(["worker-user", "list"], env);
    expect(await list.exited).toBe(0);
    for (const { id, run } of runs) {
      expect(list.output()).toContain(`${id}\tworker-${id}\t`);
      const lines = Object.fromEntries([...run.output().matchAll(/^(TROUPE_[A-Z_]+)=(.+)$/gm)].map((m) => [m[1], m[2]]));
      await (await connectAs({ url: env.NATS_URL!, role: "worker", dataDir: "/nonexistent", name: `cli-${id}`, env: lines, inboxPrefix: workerInboxPrefix(id) })).close();
    }
  }, 120_000);

  it("init --append-only-artifacts makes the screenshot store append-only, once", async () => {
    const first = troupe(["init", "--append-only-artifacts"], env);
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/object store troupe-artifacts: ready, append-only \(updated\)/);
    const again = troupe(["init"], { ...env, TROUPE_ARTIFACTS_APPEND_ONLY: "1" });
    expect(await again.exited).toBe(0);
    expect(again.output()).toMatch(/object store troupe-artifacts: ready, append-only \(unchanged\)/);
    const nc = await connectAs({ url: env.NATS_URL!, role: "master", dataDir, name: "test-append-only" });
    const c = (await (await jetstreamManager(nc)).streams.info("OBJ_troupe-artifacts")).config;
    expect([c.allow_rollup_hdrs, c.deny_purge, c.deny_delete]).toEqual([false, true, true]);
    await nc.close();
  });

  it("init --artifact-retention-hours / --artifact-max-mb set the screenshot store's retention; a cap below 64 MB is a usage error", async () => {
    const set = troupe(["init", "--artifact-retention-hours", "72", "--artifact-max-mb", "512"], env);
    expect(await set.exited).toBe(0);
    expect(set.output()).toMatch(/object store troupe-artifacts: ready.*, retention 72 h, at most 512 MB \(updated\)/);
    const same = troupe(["init"], { ...env, TROUPE_ARTIFACT_RETENTION_HOURS: "72", TROUPE_ARTIFACT_MAX_MB: "512" });
    expect(await same.exited).toBe(0);
    expect(same.output()).toMatch(/retention 72 h, at most 512 MB \(unchanged\)/);
    const nc = await connectAs({ url: env.NATS_URL!, role: "master", dataDir, name: "test-retention" });
    try {
      const c = (await (await jetstreamManager(nc)).streams.info("OBJ_troupe-artifacts")).config;
      expect([c.max_age, c.max_bytes, c.discard]).toEqual([72 * 3600 * 1e9, 512 * 1024 * 1024, "old"]);
    } finally {
      await nc.close();
    }
    const small = troupe(["init", "--artifact-max-mb", "10"], env);
    expect(await small.exited).toBe(2);
    expect(small.output()).toMatch(/--artifact-max-mb \(TROUPE_ARTIFACT_MAX_MB\) must be 0 \(no cap\) or at least 64, got 10/);
    const back = troupe(["init", "--artifact-retention-hours", "0", "--artifact-max-mb", "0"], env);
    expect(await back.exited).toBe(0);
    expect(back.output()).toMatch(/retention kept forever, no size cap \(updated\)/);
  });

  it("nats stops cleanly on SIGTERM", async () => {
    nats.child.kill("SIGTERM");
    expect(await nats.exited).toBe(0);
  });
});

describe("troupe nats --no-shared-worker-user", () => {
  it("refuses the shared worker credential, takes per-worker users, and keeps refusing it after a user is added", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "troupe-cli-noshared-"));
    const port = await freePort();
    const env: Record<string, string> = {
      TROUPE_DATA_DIR: dataDir, NATS_URL: `nats://127.0.0.1:${port}`,
      TROUPE_NATS_HOST: "127.0.0.1", TROUPE_NATS_PORT: String(port), TROUPE_NATS_WS_HOST: "127.0.0.1",
      TROUPE_NATS_WS_PORT: String(await freePort()), TROUPE_NATS_MONITOR_PORT: String(await freePort()),
    };
    const server = troupe(["nats", "--no-shared-worker-user"], env);
    try {
      await server.waitFor(/troupe nats: ready/);
      await server.waitFor(/no shared worker user: every worker needs its own/);
      const shared = () => connectAs({ url: env.NATS_URL!, role: "worker", dataDir, name: "shared", env: {} });
      await expect(shared()).rejects.toThrow(/Authorization Violation/i);
      const add = troupe(["worker-user", "add", "only-1"], env);
      expect(await add.exited).toBe(0);
      const lines = Object.fromEntries([...add.output().matchAll(/^(TROUPE_[A-Z_]+)=(.+)$/gm)].map((m) => [m[1], m[2]]));
      await (await connectAs({ url: env.NATS_URL!, role: "worker", dataDir: "/nonexistent", name: "own", env: lines, inboxPrefix: workerInboxPrefix("only-1") })).close();
      // The reload renders the config the way the server was started: still without the shared user.
      await expect(shared()).rejects.toThrow(/Authorization Violation/i);
    } finally {
      server.child.kill("SIGTERM");
      await server.exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("troupe nats when its process goes away", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  async function start(dataDir = mkdtempSync(join(tmpdir(), "troupe-cli-life-"))) {
    dirs.push(dataDir);
    const env = {
      TROUPE_DATA_DIR: dataDir, TROUPE_NATS_HOST: "127.0.0.1", TROUPE_NATS_PORT: String(await freePort()), TROUPE_NATS_WS_HOST: "127.0.0.1",
      TROUPE_NATS_WS_PORT: String(await freePort()), TROUPE_NATS_MONITOR_PORT: String(await freePort()),
    };
    const t = troupe(["nats"], env);
    await t.waitFor(/ready/);
    // setpriv execs nats-server in place: the child's pid is nats-server's (tsx's esbuild may be a child too).
    const children = execFileSync("pgrep", ["-P", String(t.child.pid)], { encoding: "utf8" }).trim().split("\n").map(Number);
    const server = children.find((pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "nats-server");
    if (server === undefined) throw new Error(`no nats-server among the children ${children.join(", ")} of troupe nats`);
    return { t, env, server };
  }

  it("a kill -9 of troupe nats takes nats-server with it (it used to keep running, holding the ports and the store); the next start on that store is not refused (its claim went with it)", async () => {
    const { t, server, env } = await start();
    t.child.kill("SIGKILL");
    await t.exited;
    await waitFor(`nats-server ${server} to stop`, () => !processAlive(server), 20_000, 50);
    const again = await start(env.TROUPE_DATA_DIR);
    again.t.child.kill("SIGTERM");
    expect(await again.t.exited).toBe(0);
  }, 120_000);

  it("a second troupe nats on the same data dir, its ports moved, refuses to start (exit 2), naming the first: two servers on one store (it started a second)", async () => {
    const { t, env } = await start();
    let second: ReturnType<typeof troupe> | undefined;
    try {
      second = troupe(["nats"], { ...env, TROUPE_NATS_PORT: String(await freePort()), TROUPE_NATS_WS_PORT: String(await freePort()), TROUPE_NATS_MONITOR_PORT: String(await freePort()) });
      expect(await second.exited).toBe(2);
      expect(second.output()).toContain(`another troupe process runs nats-server on the store of ${env.TROUPE_DATA_DIR} (pid ${t.child.pid} on `);
      expect(second.output()).not.toMatch(/ready/);
      // Refused before it wrote anything of the first's: its nats.env still names the first's port.
      expect(readFileSync(join(env.TROUPE_DATA_DIR, "nats.env"), "utf8")).toContain(`TROUPE_NATS_PORT=${env.TROUPE_NATS_PORT}\n`);
    } finally {
      // A second one that did start (the bug) is stopped too, not left running beside the suite.
      if (second && second.child.exitCode === null) second.child.kill("SIGTERM");
      await second?.exited;
      t.child.kill("SIGTERM");
      await t.exited;
    }
  }, 120_000);

  it("SIGHUP (a closed terminal) stops it like SIGTERM: nats-server stopped, exit 0 (nats-server took SIGHUP as a reload and stayed)", async () => {
    const { t, server } = await start();
    t.child.kill("SIGHUP");
    expect(await t.exited).toBe(0);
    expect(processAlive(server)).toBe(false);
  });

  it("a second troupe nats on ports in use refuses to start, naming the port, instead of calling the first one ready", async () => {
    const { t, env } = await start();
    try {
      const other = mkdtempSync(join(tmpdir(), "troupe-cli-life-"));
      dirs.push(other);
      const second = troupe(["nats"], { ...env, TROUPE_DATA_DIR: other });
      expect(await second.exited).not.toBe(0);
      expect(second.output()).toMatch(new RegExp(`client port 127\\.0\\.0\\.1:${env.TROUPE_NATS_PORT} is not available \\(EADDRINUSE\\) — something still holds it`));
      expect(second.output()).not.toMatch(/ready/);
    } finally {
      t.child.kill("SIGTERM");
      await t.exited;
    }
  });
});

describe("troupe nats as a three-member cluster, then TROUPE_REPLICAS=3 troupe init (the README's recipe)", () => {
  const dirs: string[] = [];
  const members: ReturnType<typeof troupe>[] = [];

  afterAll(async () => {
    for (const m of members) m.child.kill("SIGTERM");
    await Promise.all(members.map((m) => m.exited));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** Three members' ports and data dirs, one set of credentials copied to every member (as the README says);
   *  `await start(i)` runs member i's `troupe nats`, `clustered` is its line once it joined. */
  async function cluster(name: string, serverPrefix: string) {
    // Client and cluster ports are named up front (URLs, routes); the others are taken as a member starts: taken
    // here, a later member's WebSocket port was in use by then (a CI run, EADDRINUSE).
    const ports: { port: number; cluster: number }[] = [];
    for (let i = 0; i < 3; i++) ports.push({ port: await freePort(), cluster: await freePort() });
    const mine = Array.from({ length: 3 }, (_, i) => mkdtempSync(join(tmpdir(), `${name}-${i}-`)));
    dirs.push(...mine);
    ensureCredentials(mine[0]!);
    for (const d of mine.slice(1)) copyFileSync(credentialsPath(mine[0]!), credentialsPath(d));
    const start = async (i: number) => {
      const p = ports[i]!;
      const routes = ports.filter((_, j) => j !== i).map((q) => `nats://127.0.0.1:${q.cluster}`).join(",");
      const m = troupe(["nats", "--server-name", `${serverPrefix}${i}`, "--cluster-name", name, "--cluster-port", String(p.cluster), "--routes", routes], {
        TROUPE_DATA_DIR: mine[i]!, TROUPE_NATS_HOST: "127.0.0.1", TROUPE_NATS_PORT: String(p.port), TROUPE_NATS_WS_HOST: "127.0.0.1",
        TROUPE_NATS_WS_PORT: String(await freePort()), TROUPE_NATS_MONITOR_PORT: String(await freePort()),
      });
      members.push(m);
      return m;
    };
    const clustered = new RegExp(`troupe nats: cluster ${name} on 127\\.0\\.0\\.1:\\d+, routes nats://.*`);
    return { ports, dirs: mine, start, clustered };
  }

  it("forms the cluster and creates every stream with three replicas, init waiting for a member that starts late", async () => {
    const { ports, dirs, start, clustered } = await cluster("troupe-cli", "n");
    for (const m of [await start(0), await start(1)]) expect(await m.waitFor(clustered)).toBeTruthy();
    const url = ports.slice(0, 2).map((p) => `nats://127.0.0.1:${p.port}`).join(",");
    // Two of three members up: three replicas cannot be placed yet, and init waits instead of failing (a cluster
    // whose members start one after another; JetStream also takes a moment to see every peer of a started cluster).
    const init = troupe(["init"], { TROUPE_DATA_DIR: dirs[1]!, NATS_URL: url, TROUPE_REPLICAS: "3" });
    await init.waitFor(/troupe init: waiting for the cluster's servers \(.*no suitable peers for placement.*\); retrying/);
    expect(await (await start(2)).waitFor(clustered)).toBeTruthy();
    expect(await init.exited, init.output()).toBe(0);
    const nc = await connectAs({ url, role: "ui", dataDir: dirs[2]!, name: "test-cluster-check" });
    const jsm = await jetstreamManager(nc);
    for (const name of ["TROUPE_EVENTS", "TROUPE_HEARTBEATS"]) {
      const si = await jsm.streams.info(name);
      expect([name, si.config.num_replicas, si.cluster?.replicas?.length]).toEqual([name, 3, 2]);
    }
    await nc.close();
  }, 120_000);

  it("init waits while only one member of three runs (JetStream has no meta leader and its API does not answer), then creates the streams", async () => {
    const { ports, dirs: mine, start, clustered } = await cluster("troupe-quorum", "q");
    expect(await (await start(0)).waitFor(clustered)).toBeTruthy();
    const init = troupe(["init"], { TROUPE_DATA_DIR: mine[0]!, NATS_URL: `nats://127.0.0.1:${ports[0]!.port}`, TROUPE_REPLICAS: "3" });
    // It exited 1 on the first "timeout" (a fresh-clone run, with two members of three still electing).
    await init.waitFor(/troupe init: waiting for the cluster's servers \(.*\); retrying/);
    for (const m of [await start(1), await start(2)]) expect(await m.waitFor(clustered)).toBeTruthy();
    expect(await init.exited, init.output()).toBe(0);
    const nc = await connectAs({ url: `nats://127.0.0.1:${ports[1]!.port}`, role: "ui", dataDir: mine[1]!, name: "test-quorum-check" });
    expect((await (await jetstreamManager(nc)).streams.info("TROUPE_EVENTS")).config.num_replicas).toBe(3);
    await nc.close();
  }, 120_000);

  it("refuses routes without a cluster name, and malformed routes, naming the flag", async () => {
    const noName = troupe(["nats", "--routes", "nats://127.0.0.1:6222"], { TROUPE_DATA_DIR: dirs[0]! });
    expect(await noName.exited).toBe(2);
    expect(noName.output()).toMatch(/--routes needs --cluster-name/);
    const bad = troupe(["nats", "--cluster-name", "x", "--routes", "127.0.0.1:6222"], { TROUPE_DATA_DIR: dirs[0]! });
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toMatch(/--routes: expected nats:\/\/host:port/);
  });
});

describe("troupe nats --tls-self-signed, then init and tail with TROUPE_NATS_CA (a worker on another network)", () => {
  let dataDir: string;
  let env: Record<string, string>;
  let nats: ReturnType<typeof troupe>;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "troupe-cli-tls-"));
    const port = await freePort();
    env = {
      TROUPE_DATA_DIR: dataDir, NATS_URL: `nats://127.0.0.1:${port}`,
      TROUPE_NATS_HOST: "127.0.0.1", TROUPE_NATS_PORT: String(port), TROUPE_NATS_WS_HOST: "127.0.0.1",
      TROUPE_NATS_WS_PORT: String(await freePort()), TROUPE_NATS_MONITOR_PORT: String(await freePort()),
    };
    nats = troupe(["nats", "--tls-self-signed", "--tls-hosts", "nats.example.org"], env);
    await nats.waitFor(/troupe nats: ready/);
  });
  afterAll(async () => {
    if (nats?.child.exitCode === null) nats.child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("says it made a certificate and which CA file clients need", async () => {
    expect(nats.output()).toMatch(/made a TLS certificate for localhost, 127\.0\.0\.1, ::1, .*nats\.example\.org, signed by .*tls\/ca\.crt/);
    expect(nats.output()).toMatch(/clients .*\(TLS only\)/);
    expect(await nats.waitFor(/TROUPE_NATS_CA=\S+/)).toBe(`TROUPE_NATS_CA=${join(dataDir, "tls", "ca.crt")}`);
  });

  it("init works with TROUPE_NATS_CA and fails without it, saying what to set", async () => {
    const without = troupe(["init"], env);
    expect(await without.exited).not.toBe(0);
    expect(without.output()).toMatch(/certificate is not trusted: set TROUPE_NATS_CA/);
    const init = troupe(["init"], { ...env, TROUPE_NATS_CA: join(dataDir, "tls", "ca.crt") });
    expect(await init.exited, init.output()).toBe(0);
    expect(init.output()).toMatch(/stream TROUPE_EVENTS: created/);
  });

  it("tail follows over TLS (--nats-ca)", { timeout: 120_000 }, async () => {
    const tail = troupe(["tail", "--nats-ca", join(dataDir, "tls", "ca.crt")], env);
    try {
      await tail.waitFor(/following troupe\.evt\.>/);
      const nc = await connectAs({ url: env.NATS_URL!, ca: join(dataDir, "tls", "ca.crt"), role: "worker", dataDir, name: "test-tls-publisher" });
      await publishEvent(jetstream(nc), createEvent("job.started", { jobId: "job-tls-tail", workerId: "wn-demo-01", attempt: 1 }, "wn-demo-01") as TroupeEvent);
      await nc.close();
      expect(await tail.waitFor(/.*job-tls-tail\.started.*/)).toMatch(/job\.started  job=job-tls-tail/);
    } finally {
      tail.child.kill("SIGTERM");
      await tail.exited;
    }
  });

  it("a second start keeps the certificate, and stops cleanly", async () => {
    const pem = readFileSync(join(dataDir, "tls", "server.crt"), "utf8");
    nats.child.kill("SIGTERM");
    expect(await nats.exited).toBe(0);
    nats = troupe(["nats", "--tls-self-signed", "--tls-hosts", "nats.example.org"], env);
    await nats.waitFor(/troupe nats: ready/);
    expect(nats.output()).not.toMatch(/made a TLS certificate/);
    expect(readFileSync(join(dataDir, "tls", "server.crt"), "utf8")).toBe(pem);
    nats.child.kill("SIGTERM");
    expect(await nats.exited, nats.output()).toBe(0);
  });

  it("refuses contradictory TLS flags before starting, naming them", async () => {
    const bad = troupe(["nats", "--tls-self-signed", "--tls-cert", "x.crt"], { TROUPE_DATA_DIR: dataDir });
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toMatch(/--tls-self-signed makes its own certificate and CA: drop --tls-cert/);
  });
});
