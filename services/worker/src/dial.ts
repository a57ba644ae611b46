import { connect, type Socket } from "node:net";

/**
 * A TCP connection to the first of `addresses` that accepts, tried in order
 * (the resolver's order); each try gives up after `timeoutMs`. The egress
 * proxy only ever dials addresses the job's guard checked.
 */
export function dial(addresses: readonly string[], port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let i = 0;
    const next = (lastErr?: Error) => {
      const address = addresses[i++];
      if (address === undefined) return reject(lastErr ?? new Error("no address to connect to"));
      const s = connect({ host: address, port });
      const t = setTimeout(() => s.destroy(new Error(`connect to ${address}:${port} timed out after ${timeoutMs} ms`)), timeoutMs);
      s.once("connect", () => {
        clearTimeout(t);
        s.removeAllListeners("error");
        s.on("error", () => s.destroy()); // until the caller takes it over
        resolve(s);
      });
      s.once("error", (e) => {
        clearTimeout(t);
        next(e);
      });
    };
    next();
  });
}
