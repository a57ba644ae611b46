import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "@troupe/events/node";

/**
 * Waits until every stream exists, asking every `everyMs`. A projector started before `troupe init` or the first
 * master (services started together, in any order) exited with a bare "stream not found". Resolves false when
 * `signal` ends the wait first.
 */
export async function waitForStreams(nc: NatsConnection, streams: readonly string[], log: Logger, signal: AbortSignal, everyMs = 1000): Promise<boolean> {
  const jsm = await jetstreamManager(nc);
  let told = false;
  for (;;) {
    const missing: string[] = [];
    for (const s of streams) {
      try {
        await jsm.streams.info(s);
      } catch (e) {
        if (!/stream not found/i.test((e as Error).message)) throw new Error(`cannot read stream ${s}: ${(e as Error).message}`, { cause: e });
        missing.push(s);
      }
    }
    if (missing.length === 0) {
      if (told) log.info({ streams }, "the streams exist now; going on");
      return true;
    }
    if (!told) log.warn({ missing }, `stream${missing.length > 1 ? "s" : ""} ${missing.join(", ")} not found: waiting for \`troupe init\` or a master to create ${missing.length > 1 ? "them" : "it"}`);
    told = true;
    const stopped = await new Promise<boolean>((res) => {
      if (signal.aborted) return res(true);
      const t = setTimeout(() => { signal.removeEventListener("abort", onAbort); res(false); }, everyMs);
      const onAbort = () => { clearTimeout(t); res(true); };
      signal.addEventListener("abort", onAbort, { once: true });
    });
    if (stopped) return false;
  }
}
