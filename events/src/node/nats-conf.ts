import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DEFAULT_PREFIX, subjectsFor } from "../subjects.ts";
import { writePrivateFile } from "./private-file.ts";
import { storeNames } from "./streams.ts";
import { loadWorkerUsers, workerUserConf, type WorkerUser } from "./worker-users.ts";

/**
 * nats.conf names the default prefix in its permissions (`troupe.evt.>`, `TROUPE_EVENTS`,
 * `$KV.troupe-master.>`, ...). nats-server cannot substitute a variable inside a subject
 * string, so a stack under another prefix runs a copy of nats.conf with those names
 * rewritten. Only quoted strings are rewritten (variables like $TROUPE_NATS_PORT and
 * comments stay as they are, and nats.conf quotes every subject it names); a quoted string
 * that mentions the default prefix in a form this function does not know is an error, so a
 * later edit of nats.conf cannot leave a permission silently naming the wrong prefix.
 */
export function natsConfForPrefix(text: string, prefix: string): string {
  subjectsFor(prefix); // validates the prefix
  // Every role may publish (and most subscribe) on _INBOX.>, where replies go: a prefix there would open
  // every subject of the stack to every role.
  if (prefix === "_INBOX") throw new Error(`prefix ${JSON.stringify(prefix)} is reserved by NATS (replies travel on _INBOX.>): choose another`);
  if (prefix === DEFAULT_PREFIX) return text;
  const from = storeNames(DEFAULT_PREFIX);
  const to = storeNames(prefix);
  // Longest first, so troupe-master-snapshots is not read as troupe-master + "-snapshots".
  const names = (Object.keys(from) as (keyof typeof from)[])
    .map((k) => [from[k], to[k]] as const)
    .sort((a, b) => b[0].length - a[0].length);
  const byName = new Map(names);
  const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
  // One pass, so nothing it puts in is read again: the prefix at the start of a subject or after a direct get's
  // stream (`$JS.API.DIRECT.GET.<stream>.<subject>`), or a store name after `.` (subjects of the JS API, $KV.x, $O.x)
  // or `OBJ_` (an object store's stream) and before `.` or the end.
  const known = new RegExp(`(?:^|(?<=^\\$JS\\.API\\.DIRECT\\.GET\\.[A-Za-z0-9_-]+\\.))${escape(DEFAULT_PREFIX)}(?=\\.)|(?<=\\.|OBJ_)(?:${names.map(([n]) => escape(n)).join("|")})(?=\\.|$)`, "g");
  const mentions = new RegExp(escape(DEFAULT_PREFIX), "i");
  return text
    .split("\n")
    .map((line, i) => {
      if (/^\s*#/.test(line)) return line;
      return line.replace(/"([^"\n]*)"/g, (whole, str: string) => {
        if (!mentions.test(str)) return whole;
        // Every mention must be one we know how to rename, judged on what nats.conf says (whatever the new prefix is).
        if (mentions.test(str.replace(known, ""))) {
          throw new Error(`nats.conf line ${i + 1}: ${whole} names the default prefix in a form troupe cannot rename for prefix ${JSON.stringify(prefix)}`);
        }
        return JSON.stringify(str.replace(known, (m) => (m === DEFAULT_PREFIX ? prefix : byName.get(m) ?? m)));
      });
    })
    .join("\n");
}

/** The line of nats.conf, inside `authorization.users`, where per-worker users are written. */
export const WORKER_USERS_MARKER = "# @troupe:worker-users";

/** The lines of nats.conf around the shared worker user, which `--no-shared-worker-user` leaves out. */
export const SHARED_WORKER_BEGIN = "# @troupe:shared-worker-user begin";
export const SHARED_WORKER_END = "# @troupe:shared-worker-user end";

export interface RenderOptions {
  /** false: no shared worker user (every worker needs its own, troupe worker-user add). Default true. */
  sharedWorkerUser?: boolean;
}

/**
 * nats.conf as nats-server should run it: renamed for the prefix, the per-worker users
 * (worker-users.ts) written in place of the marker line inside `authorization.users`, and
 * the shared worker user left out when asked.
 */
export function renderNatsConf(text: string, prefix: string, workerUsers: readonly WorkerUser[], o: RenderOptions = {}): string {
  const renamed = natsConfForPrefix(text, prefix);
  let lines = renamed.split("\n");
  if (o.sharedWorkerUser === false) {
    const begin = lines.findIndex((l) => l.trim().startsWith(SHARED_WORKER_BEGIN));
    const end = lines.findIndex((l) => l.trim().startsWith(SHARED_WORKER_END));
    if (begin < 0 || end < begin) throw new Error(`nats.conf has no "${SHARED_WORKER_BEGIN}" … "${SHARED_WORKER_END}" lines around the shared worker user: cannot leave it out`);
    lines = [...lines.slice(0, begin), ...lines.slice(end + 1)];
  }
  const at = lines.findIndex((l) => l.trim().startsWith(WORKER_USERS_MARKER));
  if (at < 0) {
    if (workerUsers.length === 0) return renamed;
    throw new Error(`nats.conf has no "${WORKER_USERS_MARKER}" line inside authorization.users: cannot add the per-worker users of worker-users.json`);
  }
  const indent = /^\s*/.exec(lines[at] as string)?.[0] ?? "    ";
  return [...lines.slice(0, at + 1), ...workerUsers.map((u) => workerUserConf(prefix, u, indent)), ...lines.slice(at + 1)].join("\n");
}

/**
 * Writes the config nats-server runs, `<dataDir>/nats-<prefix>.conf`, at each start and reload:
 * nats.conf renamed for the prefix, with the data dir's per-worker users. Mode 0600: those users'
 * passwords are in it (the roles' passwords stay variables).
 */
export function natsConfFileFor(natsConf: string, prefix: string | undefined, dataDir: string, o: RenderOptions = {}): string {
  return writeNatsConf(natsConf, prefix, dataDir, o).file;
}

/** natsConfFileFor, also returning what it wrote (a start compares it with a later rendering). */
export function writeNatsConf(natsConf: string, prefix: string | undefined, dataDir: string, o: RenderOptions = {}): { file: string; text: string } {
  const p = prefix ?? DEFAULT_PREFIX;
  const file = resolve(join(dataDir, `nats-${p}.conf`));
  const header = `# Written by troupe at each start and reload of nats-server: ${resolve(natsConf)}${p === DEFAULT_PREFIX ? "" : ` renamed for prefix ${p}`}, with the per-worker users of worker-users.json${o.sharedWorkerUser === false ? ", without the shared worker user" : ""}. Edits are lost.\n`;
  const text = header + renderNatsConf(readFileSync(natsConf, "utf8"), p, loadWorkerUsers(dataDir), o);
  writePrivateFile(file, text);
  return { file, text };
}
