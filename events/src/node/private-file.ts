import { randomBytes } from "node:crypto";
import { chmodSync, renameSync, writeFileSync } from "node:fs";

/**
 * Writes `text` to `file` readable by its owner only (0600, whatever the umask), atomically: a reader
 * (nats-server reloading its config, a command reading worker-users.json) sees the old file or the new one.
 * The temporary name is unique, so two writers never share one.
 */
export function writePrivateFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
