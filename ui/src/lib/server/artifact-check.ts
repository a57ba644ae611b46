/** The fields of an object-store entry the artifact route judges (@nats-io/obj ObjectInfo). */
export interface ArtifactInfo {
  bucket: string;
  name: string;
  nuid: string;
  deleted: boolean;
  /** How many chunk messages the metadata says the object has. */
  chunks: number;
  options?: { link?: unknown } | undefined;
}

/**
 * Why an artifact must not be served, or null: absent, deleted, a link (links are never followed: one
 * could point into another bucket, such as the master's snapshots), or — for what get() returned — not the
 * very entry checked before (get() reads the metadata again and follows a link it finds then; a worker
 * can swap the metadata between the two reads).
 */
export function artifactRefusal(name: string, checked: ArtifactInfo | null, got?: ArtifactInfo): string | null {
  if (!checked || checked.deleted) return `no artifact ${name}`;
  // The nuid names the chunks' subject: anything but a plain token (`>`, `*`) would read other objects' chunks.
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(checked.nuid)) return `artifact ${name} has an invalid chunk id`;
  if (checked.options?.link) return `artifact ${name} is a link, which the dashboard does not follow`;
  if (got && (got.bucket !== checked.bucket || got.name !== name || got.nuid !== checked.nuid || got.options?.link)) return `artifact ${name} changed while it was read`;
  return null;
}

/**
 * Why an artifact whose metadata stands can no longer be read, or null: fewer of its chunks are stored
 * than its metadata counts. The store's retention (max age, size cap: docs/ui.md) removes the oldest
 * messages first, and an object's chunks are older than its metadata; reading such an object would wait
 * for chunks that never come.
 */
export function artifactGone(name: string, checked: ArtifactInfo, storedChunks: number): string | null {
  if (storedChunks >= checked.chunks) return null;
  return `artifact ${name} is no longer stored: ${storedChunks} of its ${checked.chunks} chunks are left (the store's retention removed the rest)`;
}
