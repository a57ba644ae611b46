import { describe, expect, it } from "vitest";
import { artifactGone, artifactRefusal, type ArtifactInfo } from "./artifact-check.ts";

const plain: ArtifactInfo = { bucket: "troupe-artifacts", name: "j/1/000-page.png", nuid: "N1", deleted: false, chunks: 3, options: { } };

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

  it("refuses metadata whose chunk id is not a plain token (a wildcard would read every object's chunks)", () => {
    for (const nuid of [">", "*", "a.b", "", "x".repeat(65), "a b"]) expect(artifactRefusal(plain.name, { ...plain, nuid }), nuid).toMatch(/invalid chunk id/);
    expect(artifactRefusal(plain.name, { ...plain, nuid: "Q8UFj3kYm4ngc0GJ5mNzvL" })).toBeNull();
  });

  it("refuses what get() returned when the metadata was swapped after the check: another bucket (a link followed), another entry, a link", () => {
    expect(artifactRefusal(plain.name, plain, { ...plain, bucket: "troupe-master-snapshots" })).toMatch(/changed while it was read/);
    expect(artifactRefusal("state", { ...plain, name: "state" }, { ...plain, name: "state", bucket: "troupe-master-snapshots", nuid: "N9" })).toMatch(/changed/);
    expect(artifactRefusal(plain.name, plain, { ...plain, nuid: "N2" })).toMatch(/changed/);
    expect(artifactRefusal(plain.name, plain, { ...plain, name: "other.png" })).toMatch(/changed/);
    expect(artifactRefusal(plain.name, plain, { ...plain, options: { link: { name: "x" } } })).toMatch(/changed/);
  });
});

describe("artifactGone", () => {
  it("reads an object whose chunks are all stored, and calls it gone when the retention removed some", () => {
    expect(artifactGone(plain.name, plain, 3)).toBeNull();
    expect(artifactGone(plain.name, plain, 2)).toMatch(/no longer stored: 2 of its 3 chunks/);
    expect(artifactGone(plain.name, plain, 0)).toMatch(/0 of its 3 chunks/);
    expect(artifactGone(plain.name, { ...plain, chunks: 0 }, 0)).toBeNull();
  });
});
