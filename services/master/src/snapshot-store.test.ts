import type { ObjectInfo } from "@nats-io/obj";
import { describe, expect, it } from "vitest";
import { readLatestSnapshot } from "./snapshot-store.ts";

/** Only list and getBlob, as readLatestSnapshot uses them: the retry logic, not the store, is under test here. */
function storeOf(infos: Partial<ObjectInfo>[], reads: (name: string, n: number) => Promise<Uint8Array | null>) {
  let n = 0;
  return {
    list: async () => infos as ObjectInfo[],
    getBlob: (name: string) => reads(name, ++n),
  };
}
const info = (name: string, mtime: string, size = 10): Partial<ObjectInfo> => ({ name, mtime, size, deleted: false });

describe("readLatestSnapshot", () => {
  it("reads the newest snapshot object (by time; an old `state` one included), none when there is none", async () => {
    const s = storeOf([info("state", "2026-11-29T10:00:00Z"), info("state-9-x", "2026-11-29T11:00:00Z"), info("other", "2026-11-29T12:00:00Z")], async (name) => new TextEncoder().encode(name));
    expect(await readLatestSnapshot(s)).toEqual({ name: "state-9-x", bytes: new TextEncoder().encode("state-9-x") });
    expect(await readLatestSnapshot(storeOf([info("other", "2026-11-29T12:00:00Z")], async () => null))).toBeNull();
  });

  it("gives a read that does not end up and looks again (its chunks were purged under it), then succeeds", async () => {
    const s = storeOf([info("state-9-x", "2026-11-29T11:00:00Z")], (_name, n) => (n === 1 ? new Promise<never>(() => {}) : Promise.resolve(new Uint8Array([1]))));
    expect(await readLatestSnapshot(s, () => 50)).toEqual({ name: "state-9-x", bytes: new Uint8Array([1]) });
  });

  it("throws after three reads that never end, so the master replays the whole log instead of hanging", async () => {
    const s = storeOf([info("state-9-x", "2026-11-29T11:00:00Z", 2_000_000)], () => new Promise<never>(() => {}));
    await expect(readLatestSnapshot(s, () => 20)).rejects.toThrow(/reading snapshot state-9-x \(2000000 bytes\) took longer than/);
  });
});
