import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { currentTarget, fileIdentity, newGenerationPath, removeStaleGenerations, swapIn } from "./db-file.ts";

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
    const [ofDead, ofLive, orphanWal, swapOfDead] = [`${path}.g-mx1-${dead}-ab12`, `${path}.g-mx2-${live}-cd34`, `${path}.g-mx3-${dead}-ef56-wal`, `${path}.swap-${dead}`];
    for (const f of [mine, ofDead, `${ofDead}-wal`, ofLive, orphanWal]) writeFileSync(f, "x");
    symlinkSync("nowhere", swapOfDead);
    const past = new Date(Date.now() - 3600_000);
    utimesSync(ofLive, past, past);
    expect(removeStaleGenerations(path, 60_000).sort()).toEqual([ofDead, orphanWal, swapOfDead].sort());
    expect(readdirSync(d).sort()).toEqual([basename(path), basename(cur), basename(mine), basename(ofLive)].sort());
    // Swapped in and replaced, this process's own file is abandoned: the next sweep takes it.
    const next = newGenerationPath(path);
    writeFileSync(next, "x");
    expect(swapIn(path, next)).toBe(cur);
    swapIn(path, mine);
    expect(removeStaleGenerations(path, 60_000).sort()).toEqual([cur, next].sort());
  });
});
