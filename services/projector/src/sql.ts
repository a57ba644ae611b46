import type { Database as Sqlite, Statement } from "better-sqlite3";
import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler, type Compilable } from "kysely";
import type { ReadModelDb } from "./schema.ts";

/**
 * Kysely as a query *builder* only: queries are compiled once and run as
 * better-sqlite3 prepared statements. Kysely's async execution path is 5–6×
 * slower for the fold (DESIGN.md), so it never executes anything here.
 */
export const builder = new Kysely<ReadModelDb>({
  dialect: {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  },
});

/**
 * A placeholder for a named parameter: build the query with `param("id")`
 * where a value goes, and `prepare` maps the compiled positional parameters
 * back to names.
 */
export const param = (name: string): string => `\u0000${name}`;

export interface Prepared<P extends Record<string, unknown>> {
  stmt: Statement;
  /** Positional arguments in compiled order. */
  args(p: P): unknown[];
  run(p: P): void;
  get<R>(p: P): R | undefined;
  all<R>(p: P): R[];
}

export function prepare<P extends Record<string, unknown> = Record<string, never>>(db: Sqlite, query: Compilable): Prepared<P> {
  const compiled = query.compile();
  // Each compiled parameter is either a named placeholder or a literal written into the query.
  const slots = compiled.parameters.map((v): { name: string } | { literal: unknown } => (typeof v === "string" && v.startsWith("\u0000") ? { name: v.slice(1) } : { literal: v }));
  const stmt = db.prepare(compiled.sql);
  const args = (p: P) => slots.map((s) => ("name" in s ? p[s.name] : s.literal));
  return {
    stmt,
    args,
    run: (p) => void stmt.run(...args(p)),
    get: <R>(p: P) => stmt.get(...args(p)) as R | undefined,
    all: <R>(p: P) => stmt.all(...args(p)) as R[],
  };
}
