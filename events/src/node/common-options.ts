import { int, str } from "./options.ts";

/** Options every command that talks to NATS shares. */
export const natsOptions = {
  natsUrl: str("NATS server URL(s), comma-separated", { env: "NATS_URL", default: "nats://127.0.0.1:4222", metavar: "<url>", pattern: /^(nats|tls):\/\/[^\s,]+(,\s*(nats|tls):\/\/[^\s,]+)*$/i, patternHelp: "nats://host:port or tls://host:port, comma-separated" }),
  natsCa: str("CA certificate (PEM file) the NATS server's TLS certificate is signed with; set, the connection must be TLS", { env: "TROUPE_NATS_CA", default: "", metavar: "<file>" }),
  dataDir: str("data directory (NATS store, credentials.env, SQLite)", { env: "TROUPE_DATA_DIR", default: ".troupe", metavar: "<dir>" }),
  prefix: str("subject prefix", { env: "TROUPE_PREFIX", default: "troupe", pattern: /^[A-Za-z0-9_-]+$/, patternHelp: "a token of [A-Za-z0-9_-]" }),
} as const;

/** Options of `troupe init` (also applied by the master at start). */
export const streamOptions = {
  replicas: int("stream replicas (3 in a cluster)", { env: "TROUPE_REPLICAS", default: 1, min: 1, max: 5 }),
  heartbeatMaxAgeHours: int("how long heartbeats are kept", { env: "TROUPE_HEARTBEAT_RETENTION_HOURS", default: 168, min: 1, max: 24 * 3650, metavar: "<hours>" }),
} as const;
