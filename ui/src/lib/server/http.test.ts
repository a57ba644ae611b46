import { describe, expect, it } from "vitest";
import { readBody } from "./http.ts";

// Bytes, not a string: a string body would get text/plain from Request itself.
const post = (type: string | null) => new Request("http://x.invalid/api/jobs", { method: "POST", body: new TextEncoder().encode("{}"), headers: type === null ? {} : { "content-type": type } });

describe("readBody", () => {
  it("takes application/json, with or without parameters, and a body without a type", async () => {
    for (const t of ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON;charset=UTF-8", null]) expect(await readBody(post(t), 1000), String(t)).toBe("{}");
  });
  it("refuses every other type with 415, the json-like ones included", async () => {
    for (const t of ["application/json-patch+json", "application/jsonx", "text/plain", "application/x-www-form-urlencoded"]) {
      await expect(readBody(post(t), 1000), t).rejects.toMatchObject({ code: "unsupported-media-type", status: 415 });
    }
  });
});
