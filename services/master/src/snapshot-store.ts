import type { JetStreamManager } from "@nats-io/jetstream";
import type { ObjectStore } from "@nats-io/obj";

/**
 * Where the master's state snapshots live: objects of the `<prefix>-master-snapshots` store, one per snapshot,
 * named `state-<sequence>-<time>`; the newest is the snapshot. Masters before 2026-11-29 wrote one
 * object named `state` over and over; it is read like any other.
 *
 * Why not overwrite one name: on nats-server 2.9.10 an object written over an existing name (@nats-io/obj purges
 * the old chunks with a subject filter and rolls the metadata up by subject) is removed from the stream but not
 * from JetStream's count of used storage, so every snapshot leaked its size until the store refused every append
 * ("insufficient resources") — a full purge or a server restart gave it back. An unfiltered purge up to a sequence
 * counts right, so each write drops everything older with one.
 */
export const SNAPSHOT_NAME = "state";

const isSnapshot = (name: string) => name === SNAPSHOT_NAME || name.startsWith(`${SNAPSHOT_NAME}-`);

/** How long reading one snapshot may take before it is given up and looked up again: its size at 1 MB/s, and 30 s more. */
export const snapshotReadTimeoutMs = (size: number): number => 30_000 + size / 1000;

/**
 * The newest snapshot's bytes, or null when there is none. A snapshot purged by a newer one while read is looked
 * up again: a read that fails, and one that outlasts its time (@nats-io/obj waits for ever for chunks purged after
 * it read their metadata — a review made a starting master hang that way), up to 3 tries; then it throws and the
 * master replays the whole log.
 */
export async function readLatestSnapshot(store: Pick<ObjectStore, "list" | "getBlob">, timeoutMs = snapshotReadTimeoutMs): Promise<{ name: string; bytes: Uint8Array } | null> {
  for (let attempt = 1; ; attempt++) {
    const infos = (await store.list()).filter((i) => !i.deleted && isSnapshot(i.name));
    if (infos.length === 0) return null;
    // list() reads the metadata in stream order (it does not fill in `revision`): on equal times the later one is newer.
    const newest = infos.reduce((a, b) => (Date.parse(b.mtime) >= Date.parse(a.mtime) ? b : a));
    let timer: NodeJS.Timeout | undefined;
    try {
      const bytes = await Promise.race([
        store.getBlob(newest.name),
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`reading snapshot ${newest.name} (${newest.size} bytes) took longer than ${Math.round(timeoutMs(newest.size) / 1000)} s`)), timeoutMs(newest.size)))),
      ]);
      if (bytes) return { name: newest.name, bytes };
    } catch (e) {
      if (attempt >= 3) throw e;
      continue;
    } finally {
      clearTimeout(timer);
    }
    if (attempt >= 3) return null;
  }
}

/**
 * Writes a snapshot under a new name, then drops every older message of the store's stream (earlier snapshots,
 * and the chunks of a write that died halfway) with one unfiltered purge. `stream` is the store's stream, which
 * holds nothing else.
 */
export async function writeSnapshotObject(store: ObjectStore, jsm: JetStreamManager, stream: string, o: { seq: number; bytes: Uint8Array; description: string }): Promise<string> {
  const before = (await jsm.streams.info(stream)).state.last_seq;
  const name = `${SNAPSHOT_NAME}-${o.seq}-${Date.now().toString(36)}`;
  await store.putBlob({ name, description: o.description }, o.bytes);
  // Up to, not including, the first message of this write. Never `seq: 1` (or 0): 2.9.10 takes that for a full purge.
  if (before >= 1) await jsm.streams.purge(stream, { seq: before + 1 });
  return name;
}
