import { existsSync } from "node:fs";
import {
  addWorkerUser, bool, credentialsPath, defineCommand, loadWorkerUsers, passwordVar, reloadNatsServer, removeWorkerUser, str, UsageError, userVar, withNatsConfigLock, workerUsersPath,
  type ReloadOutcome,
} from "@troupe/events/node";

const ACTIONS = ["add", "remove", "list", "reload"] as const;

/** Says whether the running nats-server took the change, or when it will. */
function reloadLine(r: ReloadOutcome): string {
  return r.reloaded ? `nats-server (pid ${r.pid}) reloaded its users` : `${r.reason}: it reads the users when it starts`;
}

export const command = defineCommand({
  name: "worker-user",
  summary: "give one worker its own NATS user, allowed to act only as that worker (add | remove | list | reload)",
  args: "add <workerId> | remove <workerId> | list | reload",
  maxPositionals: 2,
  options: {
    dataDir: str("data directory of `troupe nats` (worker-users.json, credentials.env)", { env: "TROUPE_DATA_DIR", default: ".troupe", metavar: "<dir>" }),
    rotate: bool("add: give a worker that has a user a new password (the old one is refused from the reload on)"),
  },
  details: `
The shared worker user of credentials.env may act for every worker id: it sees every job sent
to any worker and may report in any worker's name. A worker's own user may only take its own
commands, publish its own heartbeats and events, reply to requests, and write artifacts (no
reads). Run this on the machine of \`troupe nats\` (same --data-dir); a running nats-server reloads
its users at once, and \`remove\` or \`--rotate\` disconnects the old credential. \`reload\` makes it
read worker-users.json again (a cluster member's copy of it, say). Give the worker
the printed lines, plus TROUPE_SECRETS_KEY (and TROUPE_NATS_CA under TLS) from this machine.
See docs/security.md, "Per-worker users".`,
  async run({ values: v, positionals }) {
    const [action, workerId] = positionals;
    if (!ACTIONS.includes(action as (typeof ACTIONS)[number])) throw new UsageError(`give one of ${ACTIONS.join(", ")}${action === undefined ? "" : ` (got ${JSON.stringify(action)})`}`);
    if ((action === "list" || action === "reload") && workerId !== undefined) throw new UsageError(`${action} takes no worker id`);
    if ((action === "add" || action === "remove") && workerId === undefined) throw new UsageError(`${action} needs the worker id`);
    if (v.rotate && action !== "add") throw new UsageError("--rotate goes with add");
    // The users belong beside the NATS server's credentials: a mistyped --data-dir must not start a new, unused file.
    if (!existsSync(credentialsPath(v.dataDir))) throw new UsageError(`${v.dataDir} is not the data dir of a \`troupe nats\` (no ${credentialsPath(v.dataDir)}): run this on the NATS machine, with its --data-dir [TROUPE_DATA_DIR]`);
    if (action === "list") {
      const users = loadWorkerUsers(v.dataDir);
      if (users.length === 0) console.log(`no per-worker users in ${workerUsersPath(v.dataDir)}`);
      for (const u of users) console.log(`${u.workerId}\t${u.user}\tpassword set ${u.createdAt}`);
      return 0;
    }
    // One change at a time, each loaded by the running server before the next (nats-reload.ts).
    return withNatsConfigLock(v.dataDir, async () => {
      if (action === "reload") {
        const r = await reloadNatsServer(v.dataDir);
        console.log(`troupe worker-user: ${loadWorkerUsers(v.dataDir).length} per-worker user(s); ${reloadLine(r)}`);
        return r.reloaded ? 0 : 1;
      }
      const id = workerId as string;
      if (action === "remove") {
        if (!removeWorkerUser(v.dataDir, id)) {
          console.error(`troupe worker-user: worker ${id} has no user in ${workerUsersPath(v.dataDir)}`);
          return 1;
        }
        return reloadAndSay(v.dataDir, `removed the user of worker ${id}`);
      }
      let user;
      try {
        user = addWorkerUser(v.dataDir, id, { rotate: v.rotate });
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      // The lines first: they are saved already, and a failed reload must not lose the only print of the password.
      console.error(`troupe worker-user: ${v.rotate ? "new password for" : "added"} ${user.user} (${workerUsersPath(v.dataDir)}). On that worker's machine, set (with TROUPE_SECRETS_KEY, and TROUPE_NATS_CA under TLS, from this machine):`);
      console.log(`TROUPE_WORKER_ID=${user.workerId}`);
      console.log(`${userVar("worker")}=${user.user}`);
      console.log(`${passwordVar("worker")}=${user.password}`);
      return reloadAndSay(v.dataDir, v.rotate ? `new password for ${user.user}` : `added ${user.user}`);
    });
  },
});

/** Makes the running server load the change and says so; 1 when it could not. */
async function reloadAndSay(dataDir: string, done: string): Promise<number> {
  try {
    console.error(`troupe worker-user: ${done}; ${reloadLine(await reloadNatsServer(dataDir))}`);
    return 0;
  } catch (e) {
    console.error(`troupe worker-user: ${done} in ${workerUsersPath(dataDir)}, but ${(e as Error).message}`);
    return 1;
  }
}
