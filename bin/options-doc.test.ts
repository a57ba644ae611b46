import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { OPTIONS_DOC, optionsReference } from "./options-doc.ts";
import { COMMANDS } from "./registry.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The non-test TypeScript and Svelte sources under `dir`. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "node_modules" && !e.name.startsWith(".")) out.push(...sources(rel));
    } else if (/\.(ts|mts|svelte)$/.test(e.name) && !/\.test\.ts$/.test(e.name)) out.push(rel);
  }
  return out;
}

describe("an environment variable several commands read", () => {
  it("takes the same values in each (TROUPE_HEARTBEAT_MS took 50 in the master, 100 in the worker; TROUPE_MAX_JOBS 1000 in a worker, 100 in up)", async () => {
    const bounds = new Map<string, Map<string, string[]>>();
    for (const [name, entry] of Object.entries(COMMANDS)) {
      const c = await entry.load();
      for (const def of Object.values(c.options) as { env?: string; kind: string; min?: number; max?: number; choices?: readonly string[] }[]) {
        if (!def.env) continue;
        const range = JSON.stringify([def.kind, def.min, def.max, def.choices]);
        const byRange = bounds.get(def.env) ?? new Map<string, string[]>();
        byRange.set(range, [...(byRange.get(range) ?? []), name]);
        bounds.set(def.env, byRange);
      }
    }
    // On purpose: up prints the dashboard's address, so it needs a real port; `troupe ui` alone may take any free one (0).
    const meant = new Set(["TROUPE_UI_PORT"]);
    const differing = [...bounds].filter(([env, byRange]) => byRange.size > 1 && !meant.has(env)).map(([env, byRange]) => `${env}: ${[...byRange].map(([r, names]) => `${names.join(",")} ${r}`).join(" vs ")}`);
    expect(differing).toEqual([]);
  });
});

describe("docs/options.md", () => {
  it("is what the commands' option definitions say (run `pnpm options-doc` after changing an option)", async () => {
    expect(readFileSync(OPTIONS_DOC, "utf8")).toBe(await optionsReference());
  });

  it("every TROUPE_* variable the services, UI and CLI read is named in the README or docs/ (nats.conf's own variables are set by troupe nats)", () => {
    const docs = [readFileSync(join(ROOT, "README.md"), "utf8"), ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => readFileSync(join(ROOT, "docs", f), "utf8"))].join("\n");
    const conf = readFileSync(join(ROOT, "nats.conf"), "utf8");
    const used = new Set<string>();
    for (const f of ["services", "ui/src", "ui/launch", "bin", "events/src"].flatMap(sources)) {
      // Whole names only: `TROUPE_NATS_${role}_USER` is documented as its pattern.
      for (const m of readFileSync(join(ROOT, f), "utf8").matchAll(/\bTROUPE_[A-Z0-9_]*[A-Z0-9]\b(?![`$])/g)) used.add(m[0]);
    }
    const undocumented = [...used].filter((v) => !new RegExp(`\\b${v}\\b`).test(docs) && !conf.includes(`$${v}`)).sort();
    expect(undocumented).toEqual([]);
  });
});
