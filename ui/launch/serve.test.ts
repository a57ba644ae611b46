import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILD_DIR, ensureUiBuild, UI_DIR } from "./build.ts";
import { serveUi, type UiServer } from "./serve.ts";

/** A running dashboard keeps working when the build it started from is replaced (a rebuild by another process). */

let dataDir: string;
let buildDir: string;
let ui: UiServer | undefined;

beforeAll(async () => {
  await ensureUiBuild(() => {});
  dataDir = mkdtempSync(join(tmpdir(), "troupe-serve-"));
  // A build of its own to remove (inside ui/, where the app's imports resolve), not the one other tests serve.
  buildDir = join(UI_DIR, `.test-build-${process.pid}`);
  cpSync(BUILD_DIR, buildDir, { recursive: true });
  Object.assign(process.env, { TROUPE_DATA_DIR: dataDir, NATS_URL: "nats://127.0.0.1:1", TROUPE_PROJECTOR_DB: join(dataDir, "none.sqlite") });
}, 300_000);

afterAll(async () => {
  await ui?.close();
  rmSync(buildDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

describe("serveUi", () => {
  it("serves pages and client files it had not loaded yet after its build directory is gone, and removes its copy on close", async () => {
    ui = await serveUi("127.0.0.1", 0, { buildDir });
    expect((await fetch(`${ui.url}/api/stats`)).status).toBeLessThan(500);
    rmSync(buildDir, { recursive: true, force: true });
    // The login page's modules were never loaded; its HTML names client files to fetch.
    const login = await fetch(`${ui.url}/login`);
    expect(login.status).toBe(200);
    const html = await login.text();
    const asset = /\/_app\/immutable\/[^"]+\.js/.exec(html)?.[0];
    expect(asset).toBeDefined();
    expect((await fetch(`${ui.url}${asset}`)).status).toBe(200);
    const copies = readdirSync(join(UI_DIR, ".serve")).filter((d) => d.startsWith(`${process.pid}-`));
    expect(copies).toHaveLength(1);
    await ui.close();
    ui = undefined;
    expect(existsSync(join(UI_DIR, ".serve", copies[0]!))).toBe(false);
  }, 60_000);
});
