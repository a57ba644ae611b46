import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  connectAs, ensureCredentials, freePort, initStores, passwordVar, ROLES, startNatsServer, userVar,
  type Credential, type InitOptions, type NatsRole, type RunningNatsServer,
} from "@troupe/events/node";

export interface TestNats {
  url: string;
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

/**
 * Starts a real nats-server with the project's nats.conf on free ports, with a
 * temporary store and fresh credentials; waits until JetStream is healthy.
 * Every call gets its own server, so parallel tests never collide.
 */
export async function startTestNats(o: { init?: boolean; log?: boolean } = {}): Promise<TestNats> {
  const dataDir = mkdtempSync(join(tmpdir(), "troupe-test-"));
  const credentials = ensureCredentials(dataDir);
  const ports = { port: await freePort(), wsPort: await freePort(), monitorPort: await freePort() };
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
    });
  let server = await start();
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
    async connect(role, name = `test-${role}`) {
      const nc = await connectAs({ url: server.url, role, dataDir, name, env: {} });
      conns.push(nc);
      return nc;
    },
    async js(role) {
      const nc = await t.connect(role);
      return { nc, js: jetstream(nc) };
    },
    env() {
      const env: Record<string, string> = { NATS_URL: server.url, TROUPE_DATA_DIR: dataDir };
      for (const r of ROLES) {
        env[userVar(r)] = credentials[r].user;
        env[passwordVar(r)] = credentials[r].password;
      }
      return env;
    },
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
