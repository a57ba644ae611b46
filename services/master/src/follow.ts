import { DeliverPolicy, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";

/**
 * Follows a stream with an ordered consumer: first what is stored, then live.
 * `onCaughtUp` fires once, when the stored part has been handed over.
 */
export interface FollowOptions {
  stream: string;
  /** `all` for the event log; `last-per-subject` for the heartbeat tail. */
  deliver: "all" | "last-per-subject";
  /** With `all`: start at this sequence instead of the first (after a snapshot). */
  startSeq?: number;
  onMessage: (m: JsMsg) => void;
  onCaughtUp: () => void;
  log: Logger;
}

export interface Following {
  stop(): Promise<void>;
}

export async function follow(js: JetStreamClient, o: FollowOptions): Promise<Following> {
  const jsm = await js.jetstreamManager();
  const info = await jsm.streams.info(o.stream);
  let caughtUp = false;
  const caught = () => {
    if (caughtUp) return;
    caughtUp = true;
    o.onCaughtUp();
  };
  const from = o.deliver === "all" && o.startSeq !== undefined && o.startSeq > 1 ? o.startSeq : undefined;
  // Nothing stored (from the start sequence on): caught up at once.
  if (info.state.messages === 0 || (from !== undefined && info.state.last_seq < from)) caught();
  const consumer = await js.consumers.get(o.stream, from !== undefined
    ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from }
    : { deliver_policy: o.deliver === "all" ? DeliverPolicy.All : DeliverPolicy.LastPerSubject });
  // Bigger pulls than the default 100: the heartbeat tail of a large pool arrives at thousands per second.
  // A callback, not an async iterator: the messages of one socket read are folded in one turn
  // (no promise per message), and what the folds trigger leaves in one write.
  const messages = await consumer.consume({
    max_messages: 1000,
    callback: (m) => {
      try {
        o.onMessage(m);
      } catch (e) {
        // A bug in folding one message must not stop the master from following the log.
        o.log.error({ err: e, seq: m.seq, subject: m.subject }, "failed to process a message");
      }
      if (m.info.pending === 0) caught();
    },
  });
  return {
    async stop() {
      await messages.close();
    },
  };
}
