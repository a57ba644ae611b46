import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { acquireWriterLock, lockPathFor, WriterLockError } from "./writer-lock.ts";

const tempDb = () => join(mkdtempSync(join(tmpdir(), "troupe-lock-")), "readmodels.sqlite");

/** A child process that takes the lock on `dbPath` (the same SQLite exclusive transaction), says "held", and waits. */
function holdInChild(dbPath: string) {
  const code = `const D = require("better-sqlite3"); const db = new D(${JSON.stringify(lockPathFor(dbPath))}, { timeout: 0 }); db.exec("BEGIN EXCLUSIVE"); require("fs").writeFileSync(${JSON.stringify(lockPathFor(dbPath) + ".holder")}, "pid " + process.pid + " on test\\n"); process.stdout.write("held\\n"); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["-e", code], { cwd: join(import.meta.dirname, ".."), stdio: ["ignore", "pipe", "inherit"] });
  const held = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => d.toString().includes("held") && resolve());
    child.on("exit", (c) => reject(new Error(`lock holder exited with ${c}`)));
  });
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  return { child, held, exited };
}

describe("writer lock", () => {
  it("refuses a second holder of the same database and names the first", () => {
    const db = tempDb();
    const a = acquireWriterLock(db);
    expect(() => acquireWriterLock(db)).toThrow(WriterLockError);
    expect(() => acquireWriterLock(db)).toThrow(new RegExp(`another projector writes .*readmodels.sqlite \\(pid ${process.pid} on `));
    a.release();
    const b = acquireWriterLock(db);
    b.release();
  });

  it("is released by the operating system when its holder is killed with SIGKILL", async () => {
    const db = tempDb();
    const h = holdInChild(db);
    await h.held;
    expect(() => acquireWriterLock(db)).toThrow(/another projector writes .*\(pid \d+ on test\)/);
    h.child.kill("SIGKILL");
    await h.exited;
    const lock = acquireWriterLock(db);
    lock.release();
  }, 20_000);

  it("locks databases independently", () => {
    const a = acquireWriterLock(tempDb());
    const b = acquireWriterLock(tempDb());
    a.release();
    b.release();
  });
});
