import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "./options.ts";
import { pidNamespaceTag } from "./pid-alive.ts";
import { claimNatsStore, storeLockPath } from "./store-lock.ts";

const dir = () => mkdtempSync(join(tmpdir(), "troupe-store-lock-"));

describe("claimNatsStore", () => {
  it("refuses a store a live process of this namespace holds, naming it and --data-dir; takes over a dead holder's", async () => {
    const d = dir();
    const sleeper = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      writeFileSync(storeLockPath(d), `${sleeper.pid} ${pidNamespaceTag()} x\n`);
      let refused: unknown;
      try {
        claimNatsStore(d);
      } catch (e) {
        refused = e;
      }
      expect(refused).toBeInstanceOf(UsageError);
      expect((refused as Error).message).toMatch(new RegExp(`another troupe process \\(pid ${sleeper.pid}\\) runs nats-server on the store of .*another --data-dir`));
      expect(readFileSync(storeLockPath(d), "utf8")).toBe(`${sleeper.pid} ${pidNamespaceTag()} x\n`);
    } finally {
      sleeper.kill("SIGKILL");
    }
    await new Promise((r) => sleeper.once("exit", r));
    const told: string[] = [];
    const release = claimNatsStore(d, (why) => told.push(why));
    expect(told).toEqual([`its holder, pid ${sleeper.pid}, is gone`]);
    expect(readFileSync(storeLockPath(d), "utf8")).toMatch(new RegExp(`^${process.pid} ${pidNamespaceTag()} \\w+\\n$`));
    release();
    expect(existsSync(storeLockPath(d))).toBe(false);
  });

  it("takes over its own earlier claim (a restarted server) without a word, whose late release leaves the new one", () => {
    const d = dir();
    const first = claimNatsStore(d);
    const told: string[] = [];
    const second = claimNatsStore(d, (why) => told.push(why));
    expect(told).toEqual([]);
    first();
    expect(existsSync(storeLockPath(d))).toBe(true);
    second();
    expect(existsSync(storeLockPath(d))).toBe(false);
  });

  it("takes over a claim from another pid namespace (a restarted container on the same volume), saying why", () => {
    const d = dir();
    writeFileSync(storeLockPath(d), `1 00000000 x\n`); // pid 1 is alive here, but of another namespace: it says nothing
    const told: string[] = [];
    claimNatsStore(d, (why) => told.push(why))();
    expect(told).toEqual(["its holder ran in another pid namespace (a restarted container?), which this one cannot check"]);
  });
});
