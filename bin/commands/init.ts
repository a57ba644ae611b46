import { artifactRetentionFrom, bool, connectAs, defineCommand, initStores, natsOptions, streamOptions } from "@troupe/events/node";

export const command = defineCommand({
  name: "init",
  summary: "Create or update the streams TROUPE_EVENTS and TROUPE_HEARTBEATS, the object stores troupe-artifacts and troupe-master-snapshots and the KV bucket troupe-master. Idempotent; the master also runs it at start.",
  options: {
    ...natsOptions,
    ...streamOptions,
    appendOnlyArtifacts: bool("make the artifact store append-only (no rollup, purge or delete), so no worker credential can wipe it; only once every worker runs a release with attempt tokens (older ones need rollups to store screenshots); never undone by init", { env: "TROUPE_ARTIFACTS_APPEND_ONLY" }),
  },
  async run({ values: v }) {
    const retention = artifactRetentionFrom(v);
    const nc = await connectAs({ url: v.natsUrl, ca: v.natsCa, role: "master", dataDir: v.dataDir, name: "troupe-init" });
    try {
      const r = await initStores(nc, { prefix: v.prefix, ...(v.replicas !== undefined ? { replicas: v.replicas } : {}), ...(v.heartbeatMaxAgeHours !== undefined ? { heartbeatMaxAgeMs: v.heartbeatMaxAgeHours * 3600_000 } : {}), ...retention, ...(v.appendOnlyArtifacts ? { artifactsAppendOnly: true } : {}),
        onWaitForPeers: (e) => console.error(`troupe init: waiting for the cluster's servers (${e.message}); retrying`) });
      for (const s of r.streams) console.log(`stream ${s.name}: ${s.action}`);
      console.log(`object store ${r.artifacts}: ready${r.artifactsAppendOnly ? `, append-only (${r.artifactsAppendOnly})` : ""}${r.artifactsRetention ? `, retention ${describeRetention(retention)} (${r.artifactsRetention})` : ""}`);
      console.log(`kv bucket ${r.masterKv}: ready`);
      console.log(`object store ${r.masterSnapshots}: ready`);
      for (const w of r.warnings) console.error(`troupe init: warning: ${w}`);
      return 0;
    } finally {
      await nc.close();
    }
  },
});

function describeRetention(r: { artifactMaxAgeMs?: number; artifactMaxBytes?: number }): string {
  const parts: string[] = [];
  if (r.artifactMaxAgeMs !== undefined) parts.push(r.artifactMaxAgeMs ? `${r.artifactMaxAgeMs / 3600_000} h` : "kept forever");
  if (r.artifactMaxBytes !== undefined) parts.push(r.artifactMaxBytes ? `at most ${r.artifactMaxBytes / 1048576} MB` : "no size cap");
  return parts.join(", ");
}
