import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  connectAs, ensureCredentials, ensureSelfSignedTls, freePort, initStores, loadRouteCredential, passwordVar, ROLES, startNatsServer, userVar,
  type Credential, type InitOptions, type NatsRole, type RunningNatsServer,
} from "@troupe/events/node";

export interface TestNats {
  url: string;
  /** The CA clients trust, when started with `tls`. */
  caFile?: string;
  wsUrl: string;
  monitorUrl: string;
  /** Temporary data dir: NATS store and credentials.env. */
  dataDir: string;
  credentials: Record<NatsRole, Credential>;
  server: RunningNatsServer;
  /** Connects as a role; closed by stop(). */
  connect(role: NatsRole, name?: string): Promise<NatsConnection>;
  /** Connects as a role and returns a JetStream client too. */
  js(role: NatsRole): Promise<{ nc: NatsConnection; js: JetStreamClient }>;
  /** Environment for a child service process pointing at this server. */
  env(): Record<string, string>;
  /** Creates the streams and stores (as `troupe init` does). */
  init(o?: InitOptions): Promise<void>;
  /** Restarts the server on the same ports and store (fault tests). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** What a test server and a test cluster both offer clients: connections per role (closed with the rest) and a child's environment. */
function clientsOf(url: string, dataDir: string, credentials: Record<NatsRole, Credential>, conns: NatsConnection[], ca?: string) {
  const connect = async (role: NatsRole, name = `test-${role}`) => {
    const nc = await connectAs({ url, role, dataDir, name, env: {}, ...(ca ? { ca } : {}) });
    conns.push(nc);
    return nc;
  };
  return {
    connect,
    async js(role: NatsRole) {
      const nc = await connect(role);
      return { nc, js: jetstream(nc) };
    },
    env() {
      const env: Record<string, string> = { NATS_URL: url, TROUPE_DATA_DIR: dataDir, ...(ca ? { TROUPE_NATS_CA: ca } : {}) };
      for (const r of ROLES) {
        env[userVar(r)] = credentials[r].user;
        env[passwordVar(r)] = credentials[r].password;
      }
      return env;
    },
  };
}

/**
 * Starts a real nats-server with the project's nats.conf on free ports, with a
 * temporary store and fresh credentials; waits until JetStream is healthy.
 * Every call gets its own server, so parallel tests never collide.
 */
/** `maxStoreMb`: JetStream's storage limit (max_file_store), for tests of a full store. */
export async function startTestNats(o: { init?: boolean; log?: boolean; tls?: boolean; maxStoreMb?: number } = {}): Promise<TestNats> {
  const dataDir = mkdtempSync(join(tmpdir(), "troupe-test-"));
  const credentials = ensureCredentials(dataDir);
  // tls: a private CA and a certificate for 127.0.0.1 in the data dir (as `troupe nats --tls-self-signed`); clients get the CA.
  const tls = o.tls ? ensureSelfSignedTls(dataDir, ["127.0.0.1", "localhost"]) : undefined;
  const freshPorts = async () => ({ port: await freePort(), wsPort: await freePort(), monitorPort: await freePort() });
  let ports = await freshPorts();
  const start = () =>
    startNatsServer({
      dataDir,
      credentials,
      host: "127.0.0.1",
      wsHost: "127.0.0.1",
      monitorHost: "127.0.0.1",
      ...ports,
      serverName: `test-${ports.port}`,
      onLog: o.log ? (l) => console.log(`[nats] ${l}`) : () => {},
      ...(tls ? { tls } : {}),
      ...(o.maxStoreMb !== undefined ? { maxStoreBytes: o.maxStoreMb * 1024 * 1024 } : {}),
    });
  // A free port can be taken by a parallel test between freePort() and nats-server binding it: new ports, again.
  const firstStart = async (): Promise<RunningNatsServer> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await start();
      } catch (e) {
        if (attempt >= 3 || !/exited during start-up|is not available/.test((e as Error).message)) throw e;
        ports = await freshPorts();
      }
    }
  };
  let server = await firstStart();
  const conns: NatsConnection[] = [];
  const t: TestNats = {
    url: server.url,
    wsUrl: server.wsUrl,
    monitorUrl: server.monitorUrl,
    dataDir,
    credentials,
    get server() {
      return server;
    },
    ...(tls ? { caFile: tls.caFile } : {}),
    ...clientsOf(server.url, dataDir, credentials, conns, tls?.caFile),
    async init(io) {
      const nc = await t.connect("master", "test-init");
      await initStores(nc, io);
    },
    async restart() {
      await server.stop();
      server = await start();
    },
    async stop() {
      await Promise.allSettled(conns.map((c) => c.close()));
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  if (o.init) await t.init();
  return t;
}

export interface TestClusterNode {
  name: string;
  url: string;
  monitorUrl: string;
  /** Where the other members' routes connect. */
  clusterUrl: string;
  server: RunningNatsServer;
}

export interface TestCluster {
  /** The cluster's CA, when started with `tls`. */
  caFile?: string;
  /** Every member's client URL, comma-separated (as NATS_URL takes it). */
  url: string;
  nodes: TestClusterNode[];
  /** Credentials live here; each member's store is in `<dataDir>/node-<i>`. */
  dataDir: string;
  clusterName: string;
  credentials: Record<NatsRole, Credential>;
  connect(role: NatsRole, name?: string): Promise<NatsConnection>;
  js(role: NatsRole): Promise<{ nc: NatsConnection; js: JetStreamClient }>;
  env(): Record<string, string>;
  /** Creates the streams and stores with `replicas` (default: the cluster's size), retrying while the cluster elects its JetStream leader. */
  init(o?: InitOptions): Promise<void>;
  /** Stops one member (SIGKILL by default: a crash). */
  stopNode(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped member again on its ports and store. */
  startNode(i: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real nats-server cluster (default 3 members) on free ports, each with its
 * own temporary store, sharing one set of credentials: for tests of replicated
 * (R3) streams and of losing a member.
 */
export async function startTestCluster(o: { size?: number; init?: boolean; log?: boolean; tls?: boolean } = {}): Promise<TestCluster> {
  const size = o.size ?? 3;
  const dataDir = mkdtempSync(join(tmpdir(), "troupe-cluster-"));
  const credentials = ensureCredentials(dataDir);
  // tls: one CA for the cluster (as the docs say: its ca.crt and ca.key copied to each member), a certificate of its own per member.
  const tlsHosts = ["127.0.0.1", "localhost"];
  const ca = o.tls ? ensureSelfSignedTls(dataDir, tlsHosts).caFile : undefined;
  const memberTls = (i: number) => {
    if (!ca) return undefined;
    const dir = join(dataDir, `node-${i}`, "tls");
    mkdirSync(dir, { recursive: true });
    for (const f of ["ca.crt", "ca.key"]) copyFileSync(join(dataDir, "tls", f), join(dir, f));
    return ensureSelfSignedTls(join(dataDir, `node-${i}`), tlsHosts);
  };
  const ports: { port: number; wsPort: number; monitorPort: number; clusterPort: number }[] = [];
  for (let i = 0; i < size; i++) ports.push({ port: await freePort(), wsPort: await freePort(), monitorPort: await freePort(), clusterPort: await freePort() });
  const clusterName = `troupe-test-${ports[0]!.port}`;
  const start = (i: number) => {
    const p = ports[i]!;
    const tls = memberTls(i);
    return startNatsServer({
      ...(tls ? { tls } : {}),
      dataDir: join(dataDir, `node-${i}`),
      credentials,
      host: "127.0.0.1",
      wsHost: "127.0.0.1",
      monitorHost: "127.0.0.1",
      port: p.port,
      wsPort: p.wsPort,
      monitorPort: p.monitorPort,
      serverName: `test-node-${i}-${p.port}`,
      cluster: { name: clusterName, port: p.clusterPort, routes: ports.filter((_, j) => j !== i).map((q) => `nats://127.0.0.1:${q.clusterPort}`), credential: loadRouteCredential(dataDir) },
      onLog: o.log ? (l) => console.log(`[nats-${i}] ${l}`) : () => {},
    });
  };
  const servers = await Promise.all(ports.map((_, i) => start(i)));
  const nodes: TestClusterNode[] = servers.map((server, i) => ({ name: `test-node-${i}-${ports[i]!.port}`, url: server.url, monitorUrl: server.monitorUrl, clusterUrl: `nats://127.0.0.1:${ports[i]!.clusterPort}`, server }));
  const url = nodes.map((n) => n.url).join(",");
  const conns: NatsConnection[] = [];
  const t: TestCluster = {
    url,
    nodes,
    dataDir,
    clusterName,
    credentials,
    ...(ca ? { caFile: ca } : {}),
    ...clientsOf(url, dataDir, credentials, conns, ca),
    async init(io) {
      const nc = await t.connect("master", "test-init");
      // Until the members have elected a JetStream meta leader, stream creation times out or says unavailable.
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await initStores(nc, { replicas: size, ...io });
          return;
        } catch (e) {
          if (Date.now() > deadline) throw new Error(`cluster init: ${(e as Error).message}`, { cause: e });
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    },
    async stopNode(i, signal = "SIGKILL") {
      await nodes[i]!.server.stop(signal);
    },
    async startNode(i) {
      nodes[i]!.server = await start(i);
    },
    async stop() {
      await Promise.allSettled(conns.map((c) => c.close()));
      await Promise.all(nodes.map((n) => n.server.stop()));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  if (o.init) await t.init();
  return t;
}
