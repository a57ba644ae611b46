import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pidNamespaceTag } from "@troupe/events/node";
import { describe, expect, it } from "vitest";
import { currentTarget, dirSyncUnsupported, fileIdentity, newGenerationPath, removeStaleGenerations, swapIn } from "./db-file.ts";

const dir = () => mkdtempSync(join(tmpdir(), "troupe-dbfile-"));

describe("read-model file layout", () => {
  it("swaps generations with a symlink and reports the previous one", () => {
    const path = join(dir(), "rm.sqlite");
    expect(currentTarget(path)).toBeNull();
    expect(fileIdentity(path)).toBeNull();
    const g1 = newGenerationPath(path);
    writeFileSync(g1, "one");
    expect(swapIn(path, g1)).toBeNull();
    expect(currentTarget(path)).toBe(g1);
    const id1 = fileIdentity(path);
    const g2 = newGenerationPath(path);
    writeFileSync(g2, "two");
    expect(swapIn(path, g2)).toBe(g1);
    expect(currentTarget(path)).toBe(g2);
    expect(fileIdentity(path)).not.toBe(id1);
  });

  it("flushes the generation (and its WAL) to the disk before the link points at it, and the directory after", () => {
    const d = dir();
    const path = join(d, "rm.sqlite");
    const g = newGenerationPath(path);
    writeFileSync(g, "built");
    writeFileSync(`${g}-wal`, "frames");
    const seen: string[] = [];
    const target = () => currentTarget(path) ?? "none";
    swapIn(path, g, { file: (f) => seen.push(`file ${basename(f)} while the link points at ${basename(target())}`), dir: (f) => seen.push(`dir ${f} while the link points at ${basename(target())}`) });
    expect(seen).toEqual([
      `file ${basename(g)} while the link points at none`,
      `file ${basename(g)}-wal while the link points at none`,
      `dir ${d} while the link points at ${basename(g)}`,
    ]);
    // The default flushes real files and directories without error.
    const g2 = newGenerationPath(path);
    writeFileSync(g2, "again");
    expect(swapIn(path, g2)).toBe(g);
  });

  it("leaves the link as it was when the generation cannot be flushed, and says so when the directory cannot be after the swap", () => {
    const d = dir();
    const path = join(d, "rm.sqlite");
    const g1 = newGenerationPath(path);
    writeFileSync(g1, "one");
    swapIn(path, g1);
    const g2 = newGenerationPath(path);
    writeFileSync(g2, "two");
    const eio = Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
    expect(() => swapIn(path, g2, { file: () => { throw eio; }, dir: () => {} })).toThrow("EIO");
    expect(currentTarget(path)).toBe(g1);
    expect(() => swapIn(path, g2, { file: () => {}, dir: () => { throw eio; } })).toThrow(`now points at ${basename(g2)}, but its directory could not be flushed`);
    expect(currentTarget(path)).toBe(g2);
  });

  it("takes a directory fsync the file system does not do as nothing to flush, and any other error as one", () => {
    for (const code of ["EINVAL", "ENOTSUP", "EOPNOTSUPP", "EBADF", "EISDIR"]) expect(dirSyncUnsupported(Object.assign(new Error(code), { code }))).toBe(true);
    for (const e of [Object.assign(new Error("EIO"), { code: "EIO" }), Object.assign(new Error("ENOSPC"), { code: "ENOSPC" }), new Error("no code"), undefined]) expect(dirSyncUnsupported(e)).toBe(false);
  });

  it("replaces a plain file and its side files", () => {
    const d = dir();
    const path = join(d, "rm.sqlite");
    writeFileSync(path, "plain");
    writeFileSync(`${path}-wal`, "old wal");
    const g = newGenerationPath(path);
    writeFileSync(g, "new");
    expect(swapIn(path, g)).toBeNull();
    expect(readdirSync(d).sort()).toEqual([basename(path), basename(g)].sort());
  });

  it("removes old generations, not the current one nor one still being written", () => {
    const d = dir();
    const path = join(d, "rm.sqlite");
    const [cur, old, building] = [newGenerationPath(path), `${path}.g-old`, `${path}.g-building`];
    for (const f of [cur, old, `${old}-wal`, building]) writeFileSync(f, "x");
    swapIn(path, cur);
    const past = new Date(Date.now() - 120_000);
    for (const f of [cur, old, `${old}-wal`]) utimesSync(f, past, past);
    expect(removeStaleGenerations(path, 60_000)).toEqual([old]);
    expect(readdirSync(d).sort()).toEqual([basename(path), basename(cur), basename(building)].sort());
  });

  it("removes at once what a dead process or this one left, never a live process's generation however old", () => {
    const d = dir();
    const path = join(d, "rm.sqlite");
    const dead = spawnSync(process.execPath, ["-e", ""]).pid as number; // exited and reaped: a pid nobody has
    const live = process.ppid;
    const cur = newGenerationPath(path);
    writeFileSync(cur, "x");
    swapIn(path, cur);
    const mine = newGenerationPath(path); // being written by this process
    const tag = pidNamespaceTag();
    const [ofDead, ofLive, orphanWal, swapOfDead] = [`${path}.g-mx1-${tag}-${dead}-ab12`, `${path}.g-mx2-${tag}-${live}-cd34`, `${path}.g-mx3-${tag}-${dead}-ef56-wal`, `${path}.swap-${tag}-${dead}`];
    // Made in another pid namespace (a replay in another container on the same volume, pid 1 like this one's
    // projector may be): its pid means nothing here, so it is judged by age. Untagged (older names) likewise.
    const [foreign, foreignOld, untagged] = [`${path}.g-mx4-0badc0de-${process.pid}-gh78`, `${path}.g-mx5-0badc0de-${dead}-ij90`, `${path}.g-mx6-${dead}-kl12`];
    for (const f of [mine, ofDead, `${ofDead}-wal`, ofLive, orphanWal, foreign, foreignOld, untagged]) writeFileSync(f, "x");
    symlinkSync("nowhere", swapOfDead);
    const past = new Date(Date.now() - 3600_000);
    for (const f of [ofLive, foreignOld]) utimesSync(f, past, past);
    expect(removeStaleGenerations(path, 60_000).sort()).toEqual([ofDead, orphanWal, swapOfDead, foreignOld].sort());
    expect(readdirSync(d).sort()).toEqual([basename(path), basename(cur), basename(mine), basename(ofLive), basename(foreign), basename(untagged)].sort());
    for (const f of [foreign, untagged]) rmSync(f);
    // Swapped in and replaced, this process's own file is abandoned: the next sweep takes it.
    const next = newGenerationPath(path);
    writeFileSync(next, "x");
    expect(swapIn(path, next)).toBe(cur);
    swapIn(path, mine);
    expect(removeStaleGenerations(path, 60_000).sort()).toEqual([cur, next].sort());
  });
});
