import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { startOutage, type Logger } from "@troupe/events/node";

/** How often a JetStream outage of the same kind is logged again while the start waits for it. */
const OUTAGE_LOG_EVERY_MS = 30_000;

/** The kind of an outage, for logging it once per kind (the same timeout comes bare and wrapped in "cannot read stream"). */
function outageKind(e: Error): string {
  return /timeout/i.test(e.message) ? "timeout" : /no responders/i.test(e.message) ? "no responders" : /not enabled/i.test(e.message) ? "not enabled" : "other";
}

/**
 * Waits until every stream exists, asking every `everyMs`, and while JetStream does not answer. A projector started
 * before `troupe init` or the first master (services started together, in any order) exited with a bare "stream not
 * found". Resolves false when `signal` ends the wait first.
 */
export async function waitForStreams(nc: NatsConnection, streams: readonly string[], log: Logger, signal: AbortSignal, o: { everyMs?: number; onWaiting?: (what: "streams" | "jetstream") => void } = {}): Promise<boolean> {
  const everyMs = o.everyMs ?? 1000;
  const waitable = startOutage(nc);
  let jsm: JetStreamManager | undefined;
  let told = false;
  /** When the outage was last logged: again when it changes kind, or every OUTAGE_LOG_EVERY_MS while it lasts. */
  let toldOutage: { kind: string; atMs: number } | undefined;
  for (;;) {
    const missing: string[] = [];
    let outage: Error | undefined;
    try {
      jsm ??= await jetstreamManager(nc);
      for (const s of streams) {
        try {
          await jsm.streams.info(s);
        } catch (e) {
          if (!/stream not found/i.test((e as Error).message)) throw new Error(`cannot read stream ${s}: ${(e as Error).message}`, { cause: e });
          missing.push(s);
        }
      }
    } catch (e) {
      // A server restarting or stalled is waited out as a missing stream is: a projector whose server stalled for a
      // second right after it connected exited 1 with a bare "timeout" (a start-up soak, 2026-11-30).
      if (!waitable(e as Error)) throw e;
      outage = e as Error;
    }
    if (outage) {
      const kind = outageKind(outage);
      if (toldOutage?.kind !== kind || Date.now() - toldOutage.atMs >= OUTAGE_LOG_EVERY_MS) {
        log.warn({ err: outage.message }, "JetStream does not answer yet; waiting for it");
        toldOutage = { kind, atMs: Date.now() };
      }
      o.onWaiting?.("jetstream");
    } else if (missing.length === 0) {
      if (told || toldOutage) log.info({ streams }, "the streams exist now; going on");
      return true;
    } else {
      o.onWaiting?.("streams");
      if (!told) log.warn({ missing }, `stream${missing.length > 1 ? "s" : ""} ${missing.join(", ")} not found: waiting for \`troupe init\` or a master to create ${missing.length > 1 ? "them" : "it"}`);
      told = true;
    }
    const stopped = await new Promise<boolean>((res) => {
      if (signal.aborted) return res(true);
      const t = setTimeout(() => { signal.removeEventListener("abort", onAbort); res(false); }, everyMs);
      const onAbort = () => { clearTimeout(t); res(true); };
      signal.addEventListener("abort", onAbort, { once: true });
    });
    if (stopped) return false;
  }
}
