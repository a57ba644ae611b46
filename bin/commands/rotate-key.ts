import { existsSync } from "node:fs";
import { credentialsPath, defineCommand, rotateSecretsKey, SECRETS_KEY_VAR, SECRETS_KEYS_PREVIOUS_VAR, str, UsageError } from "@troupe/events/node";

export const command = defineCommand({
  name: "rotate-key",
  summary: `Replace ${SECRETS_KEY_VAR} in <data dir>/credentials.env; the old key moves to ${SECRETS_KEYS_PREVIOUS_VAR}.`,
  options: {
    dataDir: str("data directory holding credentials.env", { env: "TROUPE_DATA_DIR", default: ".troupe", metavar: "<dir>" }),
  },
  details: `
Jobs submitted from now on are sealed with the new key once the master restarts with it;
jobs sealed before (queued, or redriven later) still open on workers that also have
${SECRETS_KEYS_PREVIOUS_VAR} (the last 5 keys are kept). Order: give the workers both new
lines and restart them, then restart the master. A leaked key still opens what it sealed:
rotating protects the jobs submitted after it.`,
  async run({ values: v }) {
    // A wrong data dir made a whole new credentials.env, and printed a key the master never used (a walkthrough).
    if (!existsSync(credentialsPath(v.dataDir))) throw new UsageError(`${v.dataDir} is not the data dir of a \`troupe nats\` or \`troupe up\` (no ${credentialsPath(v.dataDir)}): run this where the master's credentials are, with its --data-dir [TROUPE_DATA_DIR]`);
    const { key, previous } = rotateSecretsKey(v.dataDir);
    console.log(`troupe rotate-key: new key written to ${credentialsPath(v.dataDir)}; ${previous.length} previous key(s) kept.`);
    // `troupe up` restarts no single service: its user stops and starts it whole (its workers read credentials.env too).
    console.log("Copy these two lines to every worker on another machine and restart those workers, then restart the master (under `troupe up`: stop it with Ctrl-C and start it again; its own workers read the new key from credentials.env, unless TROUPE_SECRETS_KEY is set in its environment):");
    console.log(`${SECRETS_KEY_VAR}=${key}`);
    console.log(`${SECRETS_KEYS_PREVIOUS_VAR}=${previous.join(",")}`);
    return 0;
  },
});
