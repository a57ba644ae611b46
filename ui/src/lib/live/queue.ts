/**
 * Messages a tab holds until its next animation frame (a hidden tab gets none): bounded by count and by bytes, past
 * either it lets go of them all and the page reloads what it missed instead (a soak: 100 large results were 25 MB
 * of buffers in a hidden tab, invisible to the page's heap figure). Pure.
 */
export class BoundedQueue<T extends { data: Uint8Array }> {
  private items: T[] = [];
  private bytes = 0;

  constructor(readonly maxItems: number, readonly maxBytes: number) {}

  /** Adds one; false when that took it past a bound and everything held was let go. */
  push(item: T): boolean {
    this.items.push(item);
    this.bytes += item.data.byteLength;
    if (this.items.length <= this.maxItems && this.bytes <= this.maxBytes) return true;
    this.take();
    return false;
  }

  /** Everything held, oldest first; the queue is empty after. */
  take(): T[] {
    const all = this.items;
    this.items = [];
    this.bytes = 0;
    return all;
  }

  get length(): number {
    return this.items.length;
  }

  /** Bytes of the messages held. */
  get byteLength(): number {
    return this.bytes;
  }
}
