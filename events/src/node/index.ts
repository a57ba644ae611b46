import { createHash } from "node:crypto";
import { setSha256Backend } from "@nats-io/obj";
import { useSha256Hex } from "../sha256.ts";
/** Node-only parts shared by the services and the CLI. */
export * from "./options.ts";
export * from "./common-options.ts";
export * from "./credentials.ts";
export * from "./nats-server.ts";
export * from "./nats-conf.ts";
export * from "./worker-users.ts";
export * from "./nats-reload.ts";
export * from "./artifact-put.ts";
export * from "./file-lock.ts";
export * from "./store-lock.ts";
export * from "./connect.ts";
export * from "./streams.ts";
export * from "./publish.ts";
export * from "./logger.ts";
export * from "./log-format.ts";
export * from "./command.ts";
export * from "./parent-death.ts";
export * from "./pid-alive.ts";
export * from "./secrets.ts";
export * from "./retry.ts";
export * from "./proxy-bypass.ts";
export * from "./tls-certs.ts";
export * from "./tls-options.ts";
export * from "./metrics-http.ts";

// The job reducer checks attempt tokens with SHA-256 (events/src/sha256.ts); in Node, node:crypto's is faster.
useSha256Hex((text) => createHash("sha256").update(text, "utf8").digest("hex"));
// Object stores hash every object they write and read (the master's state snapshots, the dashboard's screenshots);
// @nats-io/obj does it in pure JS unless told otherwise: ~4 % of the master's CPU per job in the dispatch benchmark.
setSha256Backend("native");
