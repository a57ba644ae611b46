import { existsSync } from "node:fs";
import { join } from "node:path";
import { bool, str, UsageError } from "./options.ts";
import { checkKeyFile, checkTlsHost, defaultTlsHosts, ensureSelfSignedTls, readCertificate, type TlsFiles } from "./tls-certs.ts";

/** The TLS options of `troupe nats` and `troupe up` (the server side). */
export const natsServerTlsOptions = {
  tlsCert: str("TLS certificate (PEM) for client connections; with --tls-key, every client must use TLS", { env: "TROUPE_NATS_TLS_CERT", default: "", metavar: "<file>" }),
  tlsKey: str("private key (PEM) of --tls-cert", { env: "TROUPE_NATS_TLS_KEY", default: "", metavar: "<file>" }),
  tlsCa: str("CA (PEM) that signed every cluster member's certificate: routes use TLS and verify each other with it", { env: "TROUPE_NATS_TLS_CA", default: "", metavar: "<file>" }),
  tlsSelfSigned: bool("TLS with a private CA made in <data dir>/tls/ (ca.crt goes to clients as TROUPE_NATS_CA)", { env: "TROUPE_NATS_TLS_SELF_SIGNED", default: false }),
  tlsHosts: str("extra names and addresses for the self-signed certificate (how workers and other members reach this server), comma-separated", {
    env: "TROUPE_NATS_TLS_HOSTS", default: "", metavar: "<list>",
  }),
} as const;

export interface ServerTlsValues {
  tlsCert: string;
  tlsKey: string;
  tlsCa: string;
  tlsSelfSigned: boolean;
  tlsHosts: string;
}

/**
 * Checks the TLS settings and returns the files nats-server gets, or undefined
 * for plain TCP. Self-signed: makes (or reuses) the CA and a certificate for
 * this machine's names plus --tls-hosts. Every error names its flag.
 */
export function resolveServerTls(v: ServerTlsValues, dataDir: string, o: { cluster: boolean }): (TlsFiles & { issued?: boolean; hosts?: string[] }) | undefined {
  const extra = v.tlsHosts.split(",").map((s) => s.trim()).filter(Boolean);
  for (const h of extra) {
    const err = checkTlsHost(h);
    if (err) throw new UsageError(`--tls-hosts [TROUPE_NATS_TLS_HOSTS]: ${err}`);
  }
  if (v.tlsSelfSigned) {
    if (v.tlsCert || v.tlsKey || v.tlsCa) throw new UsageError("--tls-self-signed makes its own certificate and CA: drop --tls-cert, --tls-key and --tls-ca (or drop --tls-self-signed)");
    const hosts = defaultTlsHosts(extra);
    try {
      return { ...ensureSelfSignedTls(dataDir, hosts), hosts };
    } catch (e) {
      throw new UsageError(`--tls-self-signed: ${(e as Error).message}`);
    }
  }
  if (extra.length) throw new UsageError("--tls-hosts names the hosts of a self-signed certificate: it needs --tls-self-signed");
  if (!v.tlsCert && !v.tlsKey) {
    if (v.tlsCa) throw new UsageError("--tls-ca needs --tls-cert and --tls-key (this member's certificate, signed by that CA)");
    return undefined;
  }
  if (!v.tlsCert || !v.tlsKey) throw new UsageError("--tls-cert and --tls-key go together (the certificate and its private key)");
  try {
    const cert = readCertificate(v.tlsCert, "--tls-cert [TROUPE_NATS_TLS_CERT]");
    checkKeyFile(v.tlsKey, "--tls-key [TROUPE_NATS_TLS_KEY]");
    if (v.tlsCa) {
      const ca = readCertificate(v.tlsCa, "--tls-ca [TROUPE_NATS_TLS_CA]");
      if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new Error(`--tls-ca [TROUPE_NATS_TLS_CA]: ${v.tlsCert} is not signed by ${v.tlsCa}`);
    }
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (o.cluster && !v.tlsCa) {
    throw new UsageError("a cluster with TLS needs --tls-ca [TROUPE_NATS_TLS_CA], the CA of every member's certificate, so the routes are encrypted too (or use --tls-self-signed with one shared <data dir>/tls/ca.crt and ca.key)");
  }
  return { certFile: v.tlsCert, keyFile: v.tlsKey, ...(v.tlsCa ? { caFile: v.tlsCa } : {}) };
}

/**
 * A warning when a plain start follows a self-signed TLS one in the same data dir: TLS is chosen
 * per start, and workers given the CA (TROUPE_NATS_CA) refuse a plain server, so say why before they do.
 */
export function plainAfterTlsWarning(dataDir: string, command: string): string | undefined {
  const cert = join(dataDir, "tls", "server.crt");
  if (!existsSync(cert)) return undefined;
  return `NATS runs without TLS this time, but ${cert} shows it ran with --tls-self-signed before: workers given TROUPE_NATS_CA will not connect. For TLS again: ${command} --tls-self-signed (or TROUPE_NATS_TLS_SELF_SIGNED=true)`;
}
