import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  bool, claimNatsStore, credentialsPath, defineCommand, natsOptions, natsStoreOptions, maxStoreFrom, ensureCredentials, int, loadRouteCredential, natsConfEnv, shutdownSignal, startNatsServer, str, ROLES,
  passwordVar, plainAfterTlsWarning, resolveServerTls, userVar, natsServerTlsOptions,
} from "@troupe/events/node";

const host = { pattern: /^[A-Za-z0-9.:-]+$/, patternHelp: "an IP address or host name" };

export const command = defineCommand({
  name: "nats",
  summary: "Generate per-role credentials on first run (<data dir>/credentials.env, mode 0600) and run nats-server with nats.conf.",
  options: {
    dataDir: str("data directory: NATS store and credentials.env", { env: "TROUPE_DATA_DIR", default: ".troupe", metavar: "<dir>" }),
    prefix: natsOptions.prefix,
    host: str("client listen address (0.0.0.0 so workers on other machines can connect)", { env: "TROUPE_NATS_HOST", default: "0.0.0.0", ...host }),
    port: int("client port", { env: "TROUPE_NATS_PORT", default: 4222, min: 1, max: 65535 }),
    wsHost: str("WebSocket listen address (browser dashboards)", { env: "TROUPE_NATS_WS_HOST", default: "0.0.0.0", ...host }),
    wsPort: int("WebSocket port", { env: "TROUPE_NATS_WS_PORT", default: 4223, min: 1, max: 65535 }),
    monitorHost: str("monitoring listen address", { env: "TROUPE_NATS_MONITOR_HOST", default: "127.0.0.1", ...host }),
    monitorPort: int("monitoring port (/healthz, /varz, /jsz)", { env: "TROUPE_NATS_MONITOR_PORT", default: 8222, min: 1, max: 65535 }),
    serverName: str("server name (unique within a cluster)", { env: "TROUPE_NATS_SERVER_NAME", default: "troupe", pattern: /^[A-Za-z0-9_-]+$/, patternHelp: "a token of [A-Za-z0-9_-]" }),
    clusterName: str("join a cluster of this name (the same on every member); empty = no cluster", { env: "TROUPE_NATS_CLUSTER_NAME", default: "", pattern: /^[A-Za-z0-9_-]*$/, patternHelp: "a token of [A-Za-z0-9_-]" }),
    clusterHost: str("address the cluster port listens on (default: the client listen address)", { env: "TROUPE_NATS_CLUSTER_HOST", default: "", pattern: /^[A-Za-z0-9.:-]*$/, patternHelp: "an IP address or host name" }),
    clusterPort: int("cluster port, for the other members' routes", { env: "TROUPE_NATS_CLUSTER_PORT", default: 6222, min: 1, max: 65535 }),
    routes: str("the other members, comma-separated: nats://host:port of their cluster ports", {
      env: "TROUPE_NATS_ROUTES", default: "", metavar: "<urls>",
      pattern: /^$|^nats:\/\/[A-Za-z0-9.-]+:\d{1,5}(,nats:\/\/[A-Za-z0-9.-]+:\d{1,5})*$/, patternHelp: "nats://host:port[,nats://host:port...]",
    }),
    ...natsServerTlsOptions,
    ...natsStoreOptions,
    sharedWorkerUser: bool("keep the shared worker user of credentials.env; --no-shared-worker-user leaves it out, so only per-worker users (troupe worker-user add) can run workers", { env: "TROUPE_NATS_SHARED_WORKER_USER", default: true }),
  },
  details: `
Runs in the foreground until Ctrl-C / SIGTERM. Also writes <data dir>/nats.env with the
non-secret variables nats.conf reads, so the config can be checked by hand:
  set -a; . .troupe/nats.env; . .troupe/credentials.env; nats-server -t -c nats.conf
nats-server runs <data dir>/nats-<prefix>.conf (mode 0600), written from nats.conf at each start:
its subjects and stream names renamed under another --prefix (TROUPE_PREFIX; every service and
worker then needs the same one), and the per-worker users of worker-users.json added.
A worker on another machine: \`troupe worker-user add <id>\` (same --data-dir) gives it a NATS user of
its own, which may act only as that worker, and this server loads it at once; copy the lines it
prints and TROUPE_SECRETS_KEY from credentials.env (it opens the proxy passwords the master seals).
The shared worker user of credentials.env (TROUPE_NATS_WORKER_USER/PASSWORD) may act as any worker.

A cluster (three members keep the log through the loss of any one): copy credentials.env to
each member's data dir, then on each, with its own server name and the other two as routes:
  troupe nats --server-name n1 --cluster-name troupe --routes nats://n2:6222,nats://n3:6222
and once, anywhere: TROUPE_REPLICAS=3 troupe init. Routes authenticate with the route user of
credentials.env (TROUPE_NATS_ROUTE_USER/PASSWORD), so a server without it cannot join.

TLS (workers on other networks send their password over it): --tls-self-signed makes a private
CA and a certificate for this machine's names and addresses (add others with --tls-hosts, e.g. a
public name); give clients <data dir>/tls/ca.crt as TROUPE_NATS_CA. Or bring a certificate:
--tls-cert/--tls-key (a public CA's needs nothing on the clients). Either way every client must
use TLS. In a cluster the routes use TLS too: copy tls/ca.crt and tls/ca.key to every member's
data dir before its first start with --tls-self-signed, or give each --tls-ca. Without TLS, the
routes are plain: keep the cluster port on a private network.`,
  async run({ values: v }) {
    if (v.routes && !v.clusterName) {
      console.error("troupe nats: --routes needs --cluster-name (the same on every member)");
      return 2;
    }
    // Listen before starting: a SIGTERM while nats-server starts (or right after) must still stop it, not orphan it.
    const signalled = shutdownSignal();
    const credentials = ensureCredentials(v.dataDir);
    // Before anything else in the data dir is written (nats.env, the rendered config, TLS files): one server per store.
    // Held for this process's life; the kernel drops it when the process goes (store-lock.ts).
    claimNatsStore(v.dataDir);
    const conf = natsConfEnv({
      host: v.host, port: v.port, wsHost: v.wsHost, wsPort: v.wsPort, monitorHost: v.monitorHost, monitorPort: v.monitorPort,
      serverName: v.serverName, storeDir: join(v.dataDir, "nats"), credentials, ...maxStoreFrom(v),
    });
    const secret = new Set(ROLES.flatMap((r) => [userVar(r), passwordVar(r)]));
    writeFileSync(join(v.dataDir, "nats.env"), `${Object.entries(conf).filter(([k]) => !secret.has(k)).map(([k, val]) => `${k}=${val}`).join("\n")}\n`);
    const cluster = v.clusterName
      ? { name: v.clusterName, host: v.clusterHost || v.host, port: v.clusterPort, routes: v.routes ? v.routes.split(",") : [], credential: loadRouteCredential(v.dataDir) }
      : undefined;
    const tls = resolveServerTls(v, v.dataDir, { cluster: !!cluster });
    if (tls?.issued) console.log(`troupe nats: made a TLS certificate for ${tls.hosts?.join(", ")}, signed by ${tls.caFile}`);
    const plain = tls ? undefined : plainAfterTlsWarning(v.dataDir, "troupe nats");
    if (plain) console.error(`troupe nats: ${plain}`);
    // dieWithParent: a `kill -9` of this command must not leave nats-server running (and holding the ports).
    const server = await startNatsServer({ ...v, ...maxStoreFrom(v), dataDir: v.dataDir, credentials, dieWithParent: true, ...(cluster ? { cluster } : {}), ...(tls ? { tls } : {}), ...(v.sharedWorkerUser ? {} : { sharedWorkerUser: false }) });
    if (cluster) console.log(`troupe nats: cluster ${cluster.name} on ${cluster.host}:${cluster.port}, routes ${cluster.routes.join(", ") || "none (the others connect here)"}`);
    console.log(`troupe nats: ready — clients ${server.url}${tls ? " (TLS only)" : ""}, websocket ${server.wsUrl}, monitor ${server.monitorUrl}`);
    if (tls?.caFile && v.tlsSelfSigned) console.log(`troupe nats: clients trust the server with TROUPE_NATS_CA=${resolve(tls.caFile)} (copy that file to worker machines)`);
    console.log(`troupe nats: credentials in ${credentialsPath(v.dataDir)} (run \`troupe init\` next)`);
    if (!v.sharedWorkerUser) console.log("troupe nats: no shared worker user: every worker needs its own (troupe worker-user add <id>)");
    const why = await Promise.race([signalled, server.exited.then((code) => `exit ${code}`)]);
    if (why.startsWith("exit")) {
      console.error(`troupe nats: nats-server stopped unexpectedly (${why})`);
      return 1;
    }
    await server.stop();
    return 0;
  },
});
