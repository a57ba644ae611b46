import { mkdtempSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@troupe/events/node";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { currentTarget, newGenerationPath } from "./db-file.ts";
import { assertReadModelPath, prepareFile } from "./init-file.ts";
import { createSchema } from "./schema.ts";

const dir = () => mkdtempSync(join(tmpdir(), "troupe-initfile-"));
const log = createLogger("test", "silent");

describe("which --db paths the projector may take", () => {
  it("takes a new path, troupe's symlink to a generation beside it (even dangling), and a plain read-model file", () => {
    const d = dir();
    const path = join(d, "rm.sqlite");
    expect(() => assertReadModelPath(path)).not.toThrow();
    prepareFile(path, log);
    expect(currentTarget(path)).toMatch(/rm\.sqlite\.g-/);
    expect(() => assertReadModelPath(path)).not.toThrow();
    const dangling = join(d, "gone.sqlite");
    symlinkSync("gone.sqlite.g-x", dangling);
    expect(() => assertReadModelPath(dangling)).not.toThrow();
    const plain = join(d, "plain.sqlite");
    const db = new Database(plain);
    createSchema(db);
    db.close();
    expect(() => assertReadModelPath(plain)).not.toThrow();
  });

  it("refuses anything else before touching it: text, a directory, another program's database, a symlink elsewhere", () => {
    const d = dir();
    const text = join(d, "passwd");
    writeFileSync(text, "root:x:0:0::/root:/bin/sh\n");
    expect(() => prepareFile(text, log)).toThrow(/refusing to use .*passwd as the read-model database: it is not an SQLite database/);
    expect(() => assertReadModelPath(d)).toThrow(/it is not a regular file/);
    const other = join(d, "app.sqlite");
    new Database(other).exec("create table t (x)");
    expect(() => assertReadModelPath(other)).toThrow(/SQLite database of something else/);
    const link = join(d, "rm.sqlite");
    symlinkSync(newGenerationPath(join(d, "elsewhere.sqlite")), link);
    expect(() => assertReadModelPath(link)).toThrow(/symlink to .*elsewhere\.sqlite\.g-.*not to one of troupe's generation files \(rm\.sqlite\.g-…\)/);
    // Nothing was created beside them.
    expect(readdirSync(d).sort()).toEqual(["app.sqlite", "passwd", "rm.sqlite"]);
  });
});
