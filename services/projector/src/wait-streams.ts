import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { isNatsOutage, type Logger } from "@troupe/events/node";

/**
 * Waits until every stream exists, asking every `everyMs`, and while JetStream does not answer. A projector started
 * before `troupe init` or the first master (services started together, in any order) exited with a bare "stream not
 * found". Resolves false when `signal` ends the wait first.
 */
export async function waitForStreams(nc: NatsConnection, streams: readonly string[], log: Logger, signal: AbortSignal, everyMs = 1000): Promise<boolean> {
  let jsm: JetStreamManager | undefined;
  let told = false;
  /** The outage last logged (once per kind of error, not once a second). */
  let toldOutage = "";
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
      if (!isNatsOutage(e) || nc.isClosed()) throw e;
      outage = e as Error;
    }
    if (outage) {
      if (toldOutage !== outage.message) log.warn({ err: outage.message }, "JetStream does not answer yet; waiting for it");
      toldOutage = outage.message;
    } else if (missing.length === 0) {
      if (told || toldOutage) log.info({ streams }, "the streams exist now; going on");
      return true;
    } else {
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
