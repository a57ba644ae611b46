import { describe, expect, it } from "vitest";
import { artifactRefusal, type ArtifactInfo } from "./artifact-check.ts";

const plain: ArtifactInfo = { bucket: "troupe-artifacts", name: "j/1/000-page.png", nuid: "N1", deleted: false, options: { } };

describe("artifactRefusal", () => {
  it("serves a plain artifact read back as the entry that was checked", () => {
    expect(artifactRefusal(plain.name, plain)).toBeNull();
    expect(artifactRefusal(plain.name, plain, { ...plain })).toBeNull();
  });

  it("refuses what is absent, deleted or a link", () => {
    expect(artifactRefusal(plain.name, null)).toMatch(/no artifact/);
    expect(artifactRefusal(plain.name, { ...plain, deleted: true })).toMatch(/no artifact/);
    expect(artifactRefusal(plain.name, { ...plain, options: { link: { bucket: "troupe-master-snapshots", name: "state" } } })).toMatch(/is a link/);
  });

  it("refuses what get() returned when the metadata was swapped after the check: another bucket (a link followed), another entry, a link", () => {
    expect(artifactRefusal(plain.name, plain, { ...plain, bucket: "troupe-master-snapshots" })).toMatch(/changed while it was read/);
    expect(artifactRefusal("state", { ...plain, name: "state" }, { ...plain, name: "state", bucket: "troupe-master-snapshots", nuid: "N9" })).toMatch(/changed/);
    expect(artifactRefusal(plain.name, plain, { ...plain, nuid: "N2" })).toMatch(/changed/);
    expect(artifactRefusal(plain.name, plain, { ...plain, name: "other.png" })).toMatch(/changed/);
    expect(artifactRefusal(plain.name, plain, { ...plain, options: { link: { name: "x" } } })).toMatch(/changed/);
  });
});
