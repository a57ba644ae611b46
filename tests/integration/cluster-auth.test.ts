import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "@troupe/events/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, waitFor, type TestCluster } from "../harness/index.ts";

/**
 * Cluster routes authenticate with the route user of credentials.env: a
 * nats-server that knows the cluster's name and address but not the
 * credential cannot join it (and so never sees a message of the log).
 */

let cluster: TestCluster;
let rogue: ChildProcess | undefined;
const rogueLog: string[] = [];

const routes = async (monitorUrl: string): Promise<number> => ((await (await fetch(`${monitorUrl}/routez`)).json()) as { num_routes: number }).num_routes;

beforeAll(async () => {
  cluster = await startTestCluster({ size: 2 });
});
afterAll(async () => {
  rogue?.kill("SIGKILL");
  await cluster?.stop();
});

describe("cluster routes", () => {
  it("members with the route credential form the cluster; the generated config keeps it out of the command line", async () => {
    await waitFor("both members routed", async () => (await routes(cluster.nodes[0]!.monitorUrl)) === 1 && (await routes(cluster.nodes[1]!.monitorUrl)) === 1);
    const conf = readFileSync(join(cluster.dataDir, "node-0", "nats-server.conf"), "utf8");
    expect(conf).toMatch(/authorization \{ user: "route", password: "p[A-Za-z0-9_-]+" \}/);
    // The rendered copy of nats.conf beside it (per-worker users and the prefix applied), by a relative path: 2.9 has no absolute includes.
    expect(conf).toMatch(/^include "nats-troupe\.conf"$/m);
    const args = readFileSync(`/proc/${cluster.nodes[0]!.server.process.pid}/cmdline`, "utf8");
    expect(args).not.toMatch(/route:|p[A-Za-z0-9_-]{20,}/);
  });

  it("a server without the credential cannot join: refused, and the members still have one route each", async () => {
    const [port, clusterPort, monitorPort] = [await freePort(), await freePort(), await freePort()];
    rogue = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port), "-m", String(monitorPort), "--cluster_name", cluster.clusterName,
      "--cluster", `nats://127.0.0.1:${clusterPort}`, "--routes", cluster.nodes[0]!.clusterUrl], { stdio: ["ignore", "pipe", "pipe"] });
    const feed = (b: Buffer) => rogueLog.push(...b.toString("utf8").split("\n").filter(Boolean));
    rogue.stdout?.on("data", feed);
    rogue.stderr?.on("data", feed);
    await waitFor("the rogue's route refused", () => rogueLog.some((l) => /authorization violation/i.test(l)), 15_000, 50).catch((e: Error) => {
      throw new Error(`${e.message}\n${rogueLog.join("\n")}`);
    });
    expect(await routes(`http://127.0.0.1:${monitorPort}`)).toBe(0);
    expect(await routes(cluster.nodes[0]!.monitorUrl)).toBe(1);
    expect(await routes(cluster.nodes[1]!.monitorUrl)).toBe(1);
  });
});
