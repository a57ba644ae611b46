/** The fields of an object-store entry the artifact route judges (@nats-io/obj ObjectInfo). */
export interface ArtifactInfo {
  bucket: string;
  name: string;
  nuid: string;
  deleted: boolean;
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
  if (checked.options?.link) return `artifact ${name} is a link, which the dashboard does not follow`;
  if (got && (got.bucket !== checked.bucket || got.name !== name || got.nuid !== checked.nuid || got.options?.link)) return `artifact ${name} changed while it was read`;
  return null;
}
