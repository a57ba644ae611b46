import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { schemaFiles } from "../scripts/schema-files.ts";

describe("events/schemas", () => {
  it("are up to date with the TypeScript contract (run `pnpm schemas` when this fails)", () => {
    const dir = fileURLToPath(new URL("../schemas/", import.meta.url));
    const want = schemaFiles();
    const have = readdirSync(dir).filter((f) => f.endsWith(".json"));
    expect(have.sort()).toEqual([...want.keys()].sort());
    for (const [name, content] of want) expect(readFileSync(`${dir}${name}`, "utf8"), name).toBe(content);
  });
  it("cover every event, command and the envelope", () => {
    const names = [...schemaFiles().keys()];
    expect(names).toContain("envelope.schema.json");
    expect(names.filter((n) => n.startsWith("event.")).length).toBe(14);
    expect(names).toEqual(expect.arrayContaining(["command.jobs.submit.schema.json", "command.jobs.cancel.schema.json", "command.workers.drain.schema.json", "command.worker.assign.schema.json"]));
  });
});
