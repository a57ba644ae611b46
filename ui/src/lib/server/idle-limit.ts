/**
 * `src` passed through, but failed (and `src` cancelled) when no chunk arrives for `idleMs`: a response
 * streamed from NATS must end even if what it waits for never comes (an object-store read whose chunks
 * were removed meanwhile waits for them forever).
 */
export function idleLimited(src: ReadableStream<Uint8Array>, idleMs: number, what: string): ReadableStream<Uint8Array> {
  const reader = src.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no data for ${idleMs} ms`)), idleMs);
      });
      try {
        const r = await Promise.race([reader.read(), idle]);
        if (r.done) c.close();
        else c.enqueue(r.value);
      } catch (e) {
        c.error(e);
        await reader.cancel(e).catch(() => undefined);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
