import type { JsMsg } from "@nats-io/jetstream";
import type { RawMessage } from "./writer.ts";

/**
 * Collects messages a consumer delivers and hands them over in batches: a batch
 * closes when it is full, or when the messages that arrived together are in
 * (setImmediate; live: low latency) or `lingerMs` after its first message
 * (rebuild: fewer, bigger transactions, each hot row written once per batch).
 */
export class Batcher {
  private msgs: JsMsg[] = [];
  private scheduled = false;
  private stopped = false;

  constructor(private readonly max: number, private readonly onBatch: (msgs: JsMsg[]) => void, private readonly lingerMs = 0) {}

  push(m: JsMsg): void {
    if (this.stopped) return;
    this.msgs.push(m);
    if (this.msgs.length >= this.max) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      const run = () => {
        this.scheduled = false;
        this.flush();
      };
      if (this.lingerMs > 0) setTimeout(run, this.lingerMs);
      else setImmediate(run);
    }
  }

  flush(): void {
    if (this.stopped || this.msgs.length === 0) return;
    const batch = this.msgs;
    this.msgs = [];
    this.onBatch(batch);
  }

  /** Drops what is buffered (it was not applied, so it is not acknowledged). */
  stop(): void {
    this.stopped = true;
    this.msgs = [];
  }
}

export function rawOf(m: JsMsg): RawMessage {
  return { seq: m.seq, subject: m.subject, data: m.data, publishedMs: Math.floor(m.info.timestampNanos / 1e6) };
}

/**
 * How many of `msgs` continue the consumer's delivery sequence from `next` (a new consumer starts at 1),
 * and the next one expected after them. A jump means a delivery was lost: with AckPolicy.All,
 * acknowledging what came after it would acknowledge it too, and it would never come again.
 */
export function inDeliveryOrder(msgs: readonly { info: { deliverySequence: number } }[], next: number): { count: number; next: number } {
  let count = 0;
  for (const m of msgs) {
    if (m.info.deliverySequence !== next) break;
    next++;
    count++;
  }
  return { count, next };
}
