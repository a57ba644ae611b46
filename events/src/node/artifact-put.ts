import { createHash, randomBytes } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";

/** nats.js's default chunk size for object stores. */
const CHUNK = 128 * 1024;

/** nats.js's padded base64url (object names in meta subjects, digests). */
const b64urlPadded = (b: Buffer) => b.toString("base64").replace(/\+/g, "-").replace(/\//g, "_");

/**
 * Stores `bytes` as object `name` of object store `bucket`, in the layout @nats-io/obj reads
 * (chunks on `$O.<bucket>.C.<nuid>`, then the metadata with its SHA-256 on `$O.<bucket>.M.<name>`;
 * readers take the name's last metadata), using only publishes. nats.js's `put` first reads the object's current
 * metadata and purges replaced chunks, which needs read and purge rights on the whole store; a
 * worker's own NATS user has neither (worker-users.ts), so it cannot read other jobs' artifacts.
 * Names are unique per attempt, so nothing is replaced. A failure part-way leaves its chunks
 * without metadata: nothing lists or reads them.
 */
export async function putArtifact(js: JetStreamClient, bucket: string, name: string, bytes: Uint8Array, o: { description?: string; maxPayload?: number; timeoutMs?: number } = {}): Promise<{ size: number; chunks: number; digest: string }> {
  // nats.js names the meta subject by btoa(name): Latin-1 only.
  if (!name || /[^\x00-\xff]/.test(name)) throw new Error(`artifact name ${JSON.stringify(name)}: empty or not Latin-1`);
  const chunk = Math.min(CHUNK, o.maxPayload ?? CHUNK);
  const nuid = randomBytes(16).toString("base64url").replace(/[-_]/g, "x").slice(0, 22);
  const sha = createHash("sha256");
  let chunks = 0;
  for (let at = 0; at < bytes.length; at += chunk) {
    const part = bytes.subarray(at, Math.min(bytes.length, at + chunk));
    sha.update(part);
    await js.publish(`$O.${bucket}.C.${nuid}`, part, { timeout: o.timeoutMs ?? 5000 });
    chunks++;
  }
  const digest = `SHA-256=${b64urlPadded(sha.digest())}`;
  const info = {
    bucket, nuid, size: bytes.length, chunks,
    name, description: o.description ?? "", options: { max_chunk_size: chunk },
    mtime: new Date().toISOString(), digest, deleted: false,
  };
  // No Nats-Rollup header (nats.js's put sends one to drop older metadata of the name): names are unique per
  // attempt, and an append-only store (troupe init --append-only-artifacts) refuses rollups.
  await js.publish(`$O.${bucket}.M.${b64urlPadded(Buffer.from(name, "latin1"))}`, JSON.stringify(info), { timeout: o.timeoutMs ?? 5000 });
  return { size: info.size, chunks, digest };
}
