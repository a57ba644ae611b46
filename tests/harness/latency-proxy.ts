import { connect, createServer, type Socket } from "node:net";

/**
 * A TCP forwarder in front of a server that can hold back what the server
 * sends by `delayMs` (in order): a slow link in one direction, for tests of
 * requests whose answers arrive after their timeout. `freeze()` stops every
 * byte both ways without closing anything (a link cut that TCP does not see,
 * as a frozen route or a paused peer), `thaw()` lets them through again.
 */
export interface LatencyProxy {
  url: string;
  /** Delay of server → client bytes from now on. */
  delayMs: number;
  freeze(): void;
  thaw(): void;
  /**
   * Freezes the link the moment a client sends bytes containing `text` (e.g. `$JS.API.CONSUMER`), those bytes held
   * back until the thaw: a stall at an exact step of a client's start, where a freeze from outside would race it.
   */
  freezeWhenClientSends(text: string): void;
  /** Whether the link is frozen now. */
  readonly frozen: boolean;
  close(): Promise<void>;
}

export async function startLatencyProxy(target: string): Promise<LatencyProxy> {
  const t = new URL(target);
  const sockets = new Set<Socket>();
  let frozen = false;
  let freezeOn: Buffer | null = null;
  /** Client bytes read while frozen (or the ones that froze it), sent on at the thaw. */
  const held: [Socket, Buffer][] = [];
  const proxy: LatencyProxy = {
    url: "", delayMs: 0, close: async () => {},
    // Paused sockets read nothing: what is sent meanwhile waits in the kernel's buffers and flows on thaw.
    freeze: () => { frozen = true; for (const s of sockets) s.pause(); },
    thaw: () => {
      frozen = false;
      freezeOn = null;
      for (const [to, chunk] of held.splice(0)) if (to.writable) to.write(chunk);
      for (const s of sockets) s.resume();
    },
    freezeWhenClientSends: (text) => { freezeOn = Buffer.from(text); },
    get frozen() { return frozen; },
  };
  const server = createServer((client) => {
    const upstream = connect({ host: t.hostname, port: Number(t.port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => s.destroy());
      s.once("close", () => sockets.delete(s));
    }
    /** The end of the previous chunk, so a text split between two reads is still seen. */
    let tail: Buffer = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      if (freezeOn && Buffer.concat([tail, chunk]).includes(freezeOn)) {
        freezeOn = null;
        proxy.freeze();
      }
      tail = chunk.subarray(Math.max(0, chunk.length - 64));
      if (frozen) held.push([upstream, chunk]);
      // Backpressure, as pipe() had: stop reading until the server side drains (not resumed while frozen).
      else if (!upstream.write(chunk)) {
        client.pause();
        upstream.once("drain", () => { if (!frozen) client.resume(); });
      }
    });
    client.once("end", () => upstream.end());
    let lastDue = 0;
    upstream.on("data", (chunk: Buffer) => {
      if (proxy.delayMs <= 0 && lastDue <= Date.now()) return void client.write(chunk);
      // Never before an earlier chunk: timers due at the same or a later time fire in order.
      const due = Math.max(Date.now() + proxy.delayMs, lastDue);
      lastDue = due;
      setTimeout(() => client.writable && client.write(chunk), due - Date.now());
    });
    upstream.once("close", () => setTimeout(() => client.destroy(), Math.max(0, lastDue - Date.now())));
    client.once("close", () => upstream.destroy());
    // After the data listeners, which would resume a socket paused before them.
    if (frozen) for (const s of [client, upstream]) s.pause();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  proxy.url = `nats://127.0.0.1:${(server.address() as { port: number }).port}`;
  proxy.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return proxy;
}
