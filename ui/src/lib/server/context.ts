import { readConfig, type UiConfig } from "./config.ts";
import { UiNats } from "./nats.ts";
import { openReads, type Reads } from "./reads.ts";

/** Everything a request handler needs, created once per process. */
export interface UiContext {
  cfg: UiConfig;
  nats: UiNats;
  /** The projector's read models (empty until the projector has created the file). */
  reads(): Reads;
}

let ctx: UiContext | undefined;

export function context(): UiContext {
  if (ctx) return ctx;
  const cfg = readConfig();
  const nats = new UiNats(cfg);
  let reads: Reads | undefined;
  ctx = {
    cfg,
    nats,
    reads() {
      reads ??= openReads(cfg.dbPath, cfg.suspectAfterMs);
      return reads;
    },
  };
  process.once("sveltekit:shutdown" as never, () => {
    reads?.close();
    void nats.close();
  });
  return ctx;
}
