import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { Objm, type ObjectStore } from "@nats-io/obj";
import { LEADER_KEY, parseLease, storageUse, streamHead, type LeaseValue, type StorageUse } from "@troupe/events";
import { closeConnection, connectAs, createLogger, storeNames } from "@troupe/events/node";
import type { UiConfig } from "./config.ts";

/**
 * The UI server's own NATS connection, as role `ui`: it relays commands to the
 * master and reads screenshots from the object store. Opened on first use and
 * kept (reconnects forever), so the UI starts even while NATS is still coming up.
 */
export class UiNats {
  private nc: Promise<NatsConnection> | undefined;
  private store: Promise<ObjectStore> | undefined;
  private jsm: Promise<JetStreamManager> | undefined;
  private readonly log = createLogger("ui");

  constructor(private readonly cfg: UiConfig) {}

  connection(): Promise<NatsConnection> {
    if (this.nc) return this.nc;
    const p = connectAs({ url: this.cfg.natsUrl, ca: this.cfg.natsCa, role: "ui", dataDir: this.cfg.dataDir, name: "troupe-ui", log: this.log }).then((nc) => {
      // Closed for good (nats.js gives up after the password is refused twice, e.g. across a NATS restart with
      // new credentials): forget it, so the next request connects again instead of failing forever.
      void nc.closed().then((err) => {
        if (this.nc !== p) return;
        if (err) this.log.error({ err }, "NATS connection closed for good; the next request connects again");
        this.nc = undefined;
        this.store = undefined;
        this.jsm = undefined;
      });
      return nc;
    }, (e: unknown) => {
      if (this.nc === p) this.nc = undefined; // try again on the next request
      throw e;
    });
    this.nc = p;
    return p;
  }

  artifacts(): Promise<ObjectStore> {
    this.store ??= this.connection()
      .then((nc) => new Objm(nc).open(storeNames(this.cfg.prefix).artifacts))
      .catch((e) => {
        this.store = undefined;
        throw e;
      });
    return this.store;
  }

  /** How many chunk messages of object `nuid` the artifact store holds (one stream info, filtered to its subject). */
  async artifactChunksStored(nuid: string): Promise<number> {
    const n = storeNames(this.cfg.prefix);
    const subject = `$O.${n.artifacts}.C.${nuid}`;
    const si = await (await this.manager()).streams.info(n.artifactsStream, { subjects_filter: subject });
    return si.state.subjects?.[subject] ?? 0;
  }

  /**
   * The last sequence of each stream the projector folds (events, heartbeats): what a page's catch-up waits for the
   * read models to reach. Read with stream infos, which the `ui` user may ask.
   */
  async streamHeads(): Promise<Record<string, number>> {
    const n = storeNames(this.cfg.prefix);
    const jsm = await this.manager();
    const heads: Record<string, number> = {};
    for (const stream of [n.events, n.heartbeats]) {
      try {
        heads[stream] = streamHead((await jsm.streams.info(stream)).state);
      } catch (e) {
        throw new Error(`stream info of ${stream}: ${(e as Error).message}`, { cause: e });
      }
    }
    return heads;
  }

  /**
   * The masters' leader lease as stored (null: none was ever written). The last message on the lease key of the
   * KV bucket's stream, read as the `ui` user may (a stream message get; it may not use the KV API itself).
   */
  async masterLease(): Promise<LeaseValue | null> {
    const n = storeNames(this.cfg.prefix);
    const m = await (await this.manager()).streams.getMessage(`KV_${n.masterKv}`, { last_by_subj: `$KV.${n.masterKv}.${LEADER_KEY}` });
    // A delete or purge marker has no body.
    return m && m.data.length ? parseLease(m.string()) : null;
  }

  /** How full JetStream's store is: the account's figures, and the server's limit when its monitoring endpoint answers. */
  async storage(): Promise<StorageUse> {
    const account = await (await this.manager()).getAccountInfo();
    let jsz: { storage?: number; config?: { max_storage?: number } } | undefined;
    if (this.cfg.natsMonitorUrl) {
      try {
        const r = await fetch(`${this.cfg.natsMonitorUrl}/jsz`, { signal: AbortSignal.timeout(1000) });
        if (r.ok) jsz = (await r.json()) as typeof jsz;
      } catch (e) {
        this.log.debug({ err: (e as Error).message }, "monitoring endpoint not read");
      }
    }
    return storageUse(account, jsz);
  }

  private manager(): Promise<JetStreamManager> {
    this.jsm ??= this.connection()
      .then((nc) => jetstreamManager(nc))
      .catch((e) => {
        this.jsm = undefined;
        throw e;
      });
    return this.jsm;
  }

  async close(): Promise<void> {
    const nc = await this.nc?.catch(() => undefined);
    if (nc) await closeConnection(nc, { log: this.log });
  }
}
