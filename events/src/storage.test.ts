import { describe, expect, it } from "vitest";
import { formatBytes, storageUse, storageWarning } from "./storage.ts";

const MB = 1024 * 1024;

describe("storage use", () => {
  it("takes the server's limit when the account has none, the smaller when both do, none when neither", () => {
    expect(storageUse({ storage: 10 * MB, limits: { max_storage: -1 } }, { storage: 12 * MB, config: { max_storage: 64 * MB } })).toEqual({ usedBytes: 12 * MB, limitBytes: 64 * MB });
    expect(storageUse({ storage: 10 * MB, limits: { max_storage: 32 * MB } }, { storage: 10 * MB, config: { max_storage: 64 * MB } })).toEqual({ usedBytes: 10 * MB, limitBytes: 32 * MB });
    expect(storageUse({ storage: 10 * MB, limits: { max_storage: -1 } })).toEqual({ usedBytes: 10 * MB });
  });

  it("warns from 80 % of a known limit, naming what to do", () => {
    expect(storageWarning({ usedBytes: 79 * MB, limitBytes: 100 * MB })).toBeNull();
    expect(storageWarning({ usedBytes: 10 * MB })).toBeNull();
    expect(storageWarning(null)).toBeNull();
    expect(storageWarning({ usedBytes: 85 * MB, limitBytes: 100 * MB })).toMatch(/^JetStream storage 85 % full \(85 MiB of 100 MiB\): at the limit new jobs and events are refused\..*--max-store-mb/);
  });

  it("formats bytes", () => {
    expect([0, 1023, 1536, 5 * MB + MB / 2, 3 * 1024 * MB].map(formatBytes)).toEqual(["0 B", "1023 B", "1.5 KiB", "5.5 MiB", "3.0 GiB"]);
  });
});
