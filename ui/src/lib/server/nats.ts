import type { NatsConnection } from "@nats-io/nats-core";
import { Objm, type ObjectStore } from "@nats-io/obj";
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
  private readonly log = createLogger("ui");

  constructor(private readonly cfg: UiConfig) {}

  connection(): Promise<NatsConnection> {
    this.nc ??= connectAs({ url: this.cfg.natsUrl, ca: this.cfg.natsCa, role: "ui", dataDir: this.cfg.dataDir, name: "troupe-ui", log: this.log }).catch((e) => {
      this.nc = undefined; // try again on the next request
      throw e;
    });
    return this.nc;
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

  async close(): Promise<void> {
    const nc = await this.nc?.catch(() => undefined);
    if (nc) await closeConnection(nc, { log: this.log });
  }
}
