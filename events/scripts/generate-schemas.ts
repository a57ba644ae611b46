import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { schemaFiles } from "./schema-files.ts";

/** Regenerates events/schemas/*.json from the TypeScript contract. */
const dir = fileURLToPath(new URL("../schemas/", import.meta.url));
mkdirSync(dir, { recursive: true });
const files = schemaFiles();
for (const f of readdirSync(dir)) if (f.endsWith(".json") && !files.has(f)) rmSync(join(dir, f));
for (const [name, content] of files) writeFileSync(join(dir, name), content);
console.log(`wrote ${files.size} schema files to ${dir}`);
