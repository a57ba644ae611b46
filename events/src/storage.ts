/**
 * How full JetStream's store is, as the dashboard shows it. The account's own figures (`$JS.API.INFO`, which the
 * `ui` user may ask) give the bytes used but no limit when the server's `max_file_store` is the only one (-1);
 * the server's monitoring endpoint (`/jsz`) gives that limit. Pure.
 */
export interface StorageUse {
  usedBytes: number;
  /** The limit that applies first: the account's, else the server's; absent when neither is known. */
  limitBytes?: number;
}

/** Above this share of the limit the Overview warns. */
export const STORAGE_WARN_PERCENT = 80;

/** From the account's info and, when the monitoring endpoint answered, its `/jsz` (`config.max_storage`, `storage`). */
export function storageUse(account: { storage: number; limits: { max_storage: number } }, jsz?: { storage?: number; config?: { max_storage?: number } }): StorageUse {
  const accountLimit = account.limits.max_storage > 0 ? account.limits.max_storage : undefined;
  const serverLimit = jsz?.config?.max_storage !== undefined && jsz.config.max_storage > 0 ? jsz.config.max_storage : undefined;
  // The server's count covers every account on it (Troupe's server has one); the smaller limit is the one hit first.
  const limitBytes = accountLimit !== undefined && serverLimit !== undefined ? Math.min(accountLimit, serverLimit) : accountLimit ?? serverLimit;
  const usedBytes = Math.max(account.storage, jsz?.storage ?? 0);
  return { usedBytes, ...(limitBytes !== undefined ? { limitBytes } : {}) };
}

/** The Overview's warning for a store near its limit, or null. */
export function storageWarning(s: StorageUse | null | undefined): string | null {
  if (!s?.limitBytes) return null;
  const pct = (s.usedBytes / s.limitBytes) * 100;
  if (pct < STORAGE_WARN_PERCENT) return null;
  return `JetStream storage ${Math.floor(pct)} % full (${formatBytes(s.usedBytes)} of ${formatBytes(s.limitBytes)}): at the limit new jobs and events are refused. Free space with TROUPE_ARTIFACT_RETENTION_HOURS / TROUPE_ARTIFACT_MAX_MB (screenshots), or raise the limit (troupe nats --max-store-mb).`;
}

export function formatBytes(n: number): string {
  // Powers of 1024, so said KiB, MiB…: the figures and the *_MB options (× 2^20) are binary, and the UI's memory is MiB.
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
