import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addWorkerUser, ensureCredentials, NATS_CONF, natsConfEnv, natsConfFileFor } from "@troupe/events/node";
import { describe, expect, it } from "vitest";

describe("nats.conf", () => {
  const dir = mkdtempSync(join(tmpdir(), "troupe-conf-"));
  const vars = natsConfEnv({
    host: "127.0.0.1", port: 4222, wsHost: "127.0.0.1", wsPort: 4223, monitorHost: "127.0.0.1", monitorPort: 8222,
    serverName: "check", storeDir: join(dir, "nats"), credentials: ensureCredentials(dir),
  });

  it("is accepted by `nats-server -t` with the variables set", () => {
    const r = spawnSync("nats-server", ["-t", "-c", NATS_CONF], { env: { ...process.env, ...vars }, encoding: "utf8" });
    expect(r.stderr + r.stdout).toMatch(/configuration file .* is valid/);
    expect(r.status).toBe(0);
  });

  it("is accepted by `nats-server -t` rewritten for another prefix (<data dir>/nats-acme.conf)", () => {
    const file = natsConfFileFor(NATS_CONF, "acme", dir);
    expect(file).toBe(join(dir, "nats-acme.conf"));
    const r = spawnSync("nats-server", ["-t", "-c", file], { env: { ...process.env, ...vars }, encoding: "utf8" });
    expect(r.stderr + r.stdout).toMatch(/configuration file .* is valid/);
    expect(r.status).toBe(0);
  });

  it("with per-worker users (troupe worker-user add) is accepted by `nats-server -t`, in a file only its owner reads", () => {
    addWorkerUser(dir, "eu-1");
    addWorkerUser(dir, "troupe-2");
    const file = natsConfFileFor(NATS_CONF, undefined, dir);
    expect(file).toBe(join(dir, "nats-troupe.conf"));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).toContain('"troupe.worker.troupe-2.assign"');
    const r = spawnSync("nats-server", ["-t", "-c", file], { env: { ...process.env, ...vars }, encoding: "utf8" });
    expect(r.stderr + r.stdout).toMatch(/configuration file .* is valid/);
    expect(r.status).toBe(0);
  });

  it("without the shared worker user (troupe nats --no-shared-worker-user) is accepted by `nats-server -t` and has no such user", () => {
    const file = natsConfFileFor(NATS_CONF, "acme", dir, { sharedWorkerUser: false });
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain("$TROUPE_NATS_WORKER_USER");
    expect(text).toContain("$TROUPE_NATS_MASTER_USER");
    expect(text).toContain('"acme.worker.eu-1.assign"');
    const r = spawnSync("nats-server", ["-t", "-c", file], { env: { ...process.env, ...vars }, encoding: "utf8" });
    expect(r.stderr + r.stdout).toMatch(/configuration file .* is valid/);
    expect(r.status).toBe(0);
  });

  it("is refused when a password variable is missing (no password is committed)", () => {
    const { TROUPE_NATS_MASTER_PASSWORD: _omit, ...rest } = vars;
    const env: Record<string, string | undefined> = { ...process.env, ...rest };
    delete env.TROUPE_NATS_MASTER_PASSWORD;
    const r = spawnSync("nats-server", ["-t", "-c", NATS_CONF], { env, encoding: "utf8" });
    expect(r.status).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/TROUPE_NATS_MASTER_PASSWORD/);
    rmSync(dir, { recursive: true, force: true });
  });
});
