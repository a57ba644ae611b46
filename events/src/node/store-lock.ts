import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "./options.ts";
import { pidAlive, pidNamespaceTag } from "./pid-alive.ts";

/** Held while a nats-server started by troupe runs on `<dataDir>/nats`: the pid of the troupe process and its namespace. */
export const storeLockPath = (dataDir: string) => join(dataDir, "nats-store.lock");

/**
 * Claims the JetStream store of `dataDir` for this process's nats-server. A second `troupe up` or `troupe nats` on
 * the same data dir (only its ports moved) started a second nats-server on the same store, and a second master on
 * its log: two servers writing one store (a new user's walkthrough). nats-server 2.9.10 does not lock it itself.
 *
 * The claim is a file holding this pid and its pid namespace's tag: a holder that is alive in this namespace keeps
 * it (a usage error naming it); one that is gone, this process itself (a restart after its server died), or one of
 * another namespace (a container restarted on the same volume: its pid means nothing here) is taken over. So two
 * containers sharing one data dir are not told apart, and two starts that find the same dead holder in the same
 * millisecond could both take it over (as with `withFileLock`). Returns the release, which removes only this
 * process's claim.
 */
export function claimNatsStore(dataDir: string, onTakeOver: (why: string) => void = () => {}): () => void {
  const path = storeLockPath(dataDir);
  // The nonce tells this claim from an earlier one of the same process (a restarted server): its release is no longer ours.
  const mine = `${process.pid} ${pidNamespaceTag()} ${randomBytes(6).toString("hex")}\n`;
  for (let tries = 0; ; tries++) {
    try {
      writeFileSync(path, mine, { flag: "wx", mode: 0o600 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`cannot create ${path}: ${(e as Error).message}`, { cause: e });
    }
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      continue; // released meanwhile
    }
    const [pidText, tag] = text.trim().split(/\s+/);
    const pid = Number(pidText);
    const here = tag === pidNamespaceTag();
    if (here && pid !== process.pid && pidAlive(pid)) {
      throw new UsageError(`another troupe process (pid ${pid}) runs nats-server on the store of ${dataDir}: two servers must not share one store. Stop it (its \`troupe up\` or \`troupe nats\`), or give this one another --data-dir (TROUPE_DATA_DIR); ${path} names the holder`);
    }
    if (tries > 5) throw new Error(`cannot claim ${path}: it keeps coming back (another start racing this one?)`);
    if (pid !== process.pid) onTakeOver(here ? `its holder, pid ${pid}, is gone` : "its holder ran in another pid namespace (a restarted container?), which this one cannot check");
    rmSync(path, { force: true });
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    try {
      if (readFileSync(path, "utf8") === mine) rmSync(path, { force: true });
    } catch {
      // Gone already.
    }
  };
}
