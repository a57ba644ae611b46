import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeEvent, subjectOf, subjects } from "@troupe/events";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { generateEvents } from "../test/generate.ts";
import { buildThreadEntry, tsxEntry } from "./build-thread-bundle.ts";
import { BuildWriter } from "./build-writer.ts";
import { FOLDED_TABLES } from "./schema.ts";

function dump(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true });
  const out: Record<string, unknown[]> = {};
  for (const t of FOLDED_TABLES) out[t] = db.prepare(`select * from ${t} order by 1, 2`).all();
  db.close();
  return out;
}

describe("the rebuild's writer thread, bundled", () => {
  it("is one JavaScript file that imports no TypeScript and no workspace package", async () => {
    const entry = await buildThreadEntry();
    expect(await buildThreadEntry()).toBe(entry); // once per process
    const code = readFileSync(fileURLToPath(entry), "utf8");
    expect(code).not.toMatch(/from\s+"@troupe\//);
    expect(code).not.toMatch(/from\s+"[^"]+\.ts"/);
    expect(code).toMatch(/better-sqlite3/);
  });

  it("folds a log into the same rows as the thread loaded through tsx", async () => {
    const start = Date.now() - 3600_000;
    const events = [...generateEvents({ workers: 20, events: 3_000, startMs: start, stepMs: 1000, seed: 3 })];
    const dir = mkdtempSync(join(tmpdir(), "troupe-bundle-"));
    const fold = async (entry: URL, file: string) => {
      const w = new BuildWriter(entry, { file, prefix: subjects.prefix, seriesRetentionMs: 24 * 3600_000, clockMs: start + 2 * 3600_000 }, () => undefined);
      let applied = 0;
      for (const stream of ["TROUPE_EVENTS", "TROUPE_HEARTBEATS"]) {
        const list = events.filter((e) => (e.type === "worker.heartbeat") === (stream === "TROUPE_HEARTBEATS"));
        for (let i = 0; i < list.length; i += 400) {
          const packer = w.packer(stream, 400, true);
          list.slice(i, i + 400).forEach((e, k) => packer.add(subjectOf(e), encodeEvent(e), i + k + 1, Date.parse(e.time)));
          await w.apply(packer);
          applied += Math.min(400, list.length - i);
        }
      }
      const r = await w.finish(applied, 0);
      expect(r.checkpoints).toEqual({ TROUPE_EVENTS: expect.any(Number), TROUPE_HEARTBEATS: expect.any(Number) });
      return dump(file);
    };
    const bundled = await fold(await buildThreadEntry(), join(dir, "bundled.sqlite"));
    expect(bundled.jobs!.length).toBeGreaterThan(50);
    expect(await fold(tsxEntry, join(dir, "tsx.sqlite"))).toEqual(bundled);
  });
});
