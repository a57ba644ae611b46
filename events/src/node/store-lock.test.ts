import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "./options.ts";
import { claimNatsStore } from "./store-lock.ts";

const dir = () => mkdtempSync(join(tmpdir(), "troupe-store-lock-"));

/** Another process holding the claim until it is killed; resolves once it holds it. */
async function holder(dataDir: string) {
  const code = `
    const { claimNatsStore } = await import(${JSON.stringify(new URL("./store-lock.ts", import.meta.url).pathname)});
    claimNatsStore(${JSON.stringify(dataDir)}); // its release not kept, as the commands do
    // A collected connection is closed, and its lock with it: the claim must outlive any garbage collection.
    for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
    console.log("held");
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((res, rej) => {
    child.stdout.on("data", (d: Buffer) => d.toString().includes("held") && res());
    child.once("exit", (c) => rej(new Error(`the holder exited (${c}) before it held the claim`)));
  });
  return child;
}

describe("claimNatsStore", () => {
  it("refuses a store another live process holds, naming it and --data-dir; once that process is killed (-9) the claim is free at once", async () => {
    const d = dir();
    const other = await holder(d);
    const gone = new Promise((r) => other.once("exit", r));
    try {
      let refused: unknown;
      try {
        claimNatsStore(d);
      } catch (e) {
        refused = e;
      }
      expect(refused).toBeInstanceOf(UsageError);
      expect((refused as Error).message).toMatch(new RegExp(`another troupe process runs nats-server on the store of .* \\(pid ${other.pid} on .* since .*\\): two servers must not share one store.*another --data-dir`));
    } finally {
      // The kernel drops it with its holder: nothing stale to clean up, whatever pid comes back after a reboot.
      // (Killed on a failure too: it holds the claim until then.)
      other.kill("SIGKILL");
      await gone;
    }
    const release = claimNatsStore(d);
    release();
    release(); // twice is harmless
    claimNatsStore(d)();
  });

  it("is one per process and data dir: a second claim in the same process is refused too, until released", () => {
    const d = dir();
    const release = claimNatsStore(d);
    expect(() => claimNatsStore(d)).toThrow(UsageError);
    release();
    claimNatsStore(d)();
  });
});
