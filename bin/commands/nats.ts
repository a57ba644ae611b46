import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  credentialsPath, defineCommand, ensureCredentials, int, natsConfEnv, shutdownSignal, startNatsServer, str, ROLES,
  passwordVar, userVar,
} from "@troupe/events/node";

const host = { pattern: /^[A-Za-z0-9.:-]+$/, patternHelp: "an IP address or host name" };

export const command = defineCommand({
  name: "nats",
  summary: "Generate per-role credentials on first run (<data dir>/credentials.env, mode 0600) and run nats-server with nats.conf.",
  options: {
    dataDir: str("data directory: NATS store and credentials.env", { env: "TROUPE_DATA_DIR", default: ".troupe", metavar: "<dir>" }),
    host: str("client listen address (0.0.0.0 so workers on other machines can connect)", { env: "TROUPE_NATS_HOST", default: "0.0.0.0", ...host }),
    port: int("client port", { env: "TROUPE_NATS_PORT", default: 4222, min: 1, max: 65535 }),
    wsHost: str("WebSocket listen address (browser dashboards)", { env: "TROUPE_NATS_WS_HOST", default: "0.0.0.0", ...host }),
    wsPort: int("WebSocket port", { env: "TROUPE_NATS_WS_PORT", default: 4223, min: 1, max: 65535 }),
    monitorHost: str("monitoring listen address", { env: "TROUPE_NATS_MONITOR_HOST", default: "127.0.0.1", ...host }),
    monitorPort: int("monitoring port (/healthz, /varz, /jsz)", { env: "TROUPE_NATS_MONITOR_PORT", default: 8222, min: 1, max: 65535 }),
    serverName: str("server name", { env: "TROUPE_NATS_SERVER_NAME", default: "troupe", pattern: /^[A-Za-z0-9_-]+$/, patternHelp: "a token of [A-Za-z0-9_-]" }),
  },
  details: `
Runs in the foreground until Ctrl-C / SIGTERM. Also writes <data dir>/nats.env with the
non-secret variables nats.conf reads, so the config can be checked by hand:
  set -a; . .troupe/nats.env; . .troupe/credentials.env; nats-server -t -c nats.conf
Copy the worker lines of credentials.env (TROUPE_NATS_WORKER_USER/PASSWORD) to worker machines.`,
  async run({ values: v }) {
    const credentials = ensureCredentials(v.dataDir);
    const conf = natsConfEnv({
      host: v.host, port: v.port, wsHost: v.wsHost, wsPort: v.wsPort, monitorHost: v.monitorHost, monitorPort: v.monitorPort,
      serverName: v.serverName, storeDir: join(v.dataDir, "nats"), credentials,
    });
    const secret = new Set(ROLES.flatMap((r) => [userVar(r), passwordVar(r)]));
    writeFileSync(join(v.dataDir, "nats.env"), `${Object.entries(conf).filter(([k]) => !secret.has(k)).map(([k, val]) => `${k}=${val}`).join("\n")}\n`);
    const server = await startNatsServer({ ...v, dataDir: v.dataDir, credentials });
    console.log(`troupe nats: ready — clients ${server.url}, websocket ${server.wsUrl}, monitor ${server.monitorUrl}`);
    console.log(`troupe nats: credentials in ${credentialsPath(v.dataDir)} (run \`troupe init\` next)`);
    const why = await Promise.race([shutdownSignal(), server.exited.then((code) => `exit ${code}`)]);
    if (why.startsWith("exit")) {
      console.error(`troupe nats: nats-server stopped unexpectedly (${why})`);
      return 1;
    }
    await server.stop();
    return 0;
  },
});
