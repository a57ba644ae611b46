/**
 * SHA-256 of a string (UTF-8), as lowercase hex. Synchronous and dependency-free, because the job
 * reducer (views/job.ts) checks attempt tokens with it everywhere it folds: the master, the projector
 * and the dashboard page in the browser (where crypto.subtle is asynchronous). Only short inputs
 * (tokens) go through it; checked against node:crypto in sha256.test.ts.
 */
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/**
 * Tokens are checked several times per attempt (started, progress, completed, by every reader), and the
 * master hashes each one it makes: a small memo makes every check after the first a lookup. Cleared
 * whole when full (a pure function's cache: what it forgets is only recomputed).
 */
const memo = new Map<string, string>();
const MEMO_MAX = 4096;
let hasher: (text: string) => string = (text) => digest(text);

/** Node processes hand in node:crypto's SHA-256 (events/src/node), about three times as fast as this one. */
export function useSha256Hex(native: (text: string) => string): void {
  hasher = native;
}

export function sha256Hex(text: string): string {
  const known = memo.get(text);
  if (known !== undefined) return known;
  const hex = hasher(text);
  if (memo.size >= MEMO_MAX) memo.clear();
  memo.set(text, hex);
  return hex;
}

const encoder = new TextEncoder();
const w = new Uint32Array(64);
const h = new Uint32Array(8);
const one = new Uint8Array(64);
const oneView = new DataView(one.buffer);
const ASCII = /^[\x00-\x7f]*$/;

function digest(text: string): string {
  let buf: Uint8Array;
  let view: DataView;
  if (text.length <= 55 && ASCII.test(text)) {
    // One block, no allocation: the case of every token.
    one.fill(0);
    for (let i = 0; i < text.length; i++) one[i] = text.charCodeAt(i);
    one[text.length] = 0x80;
    oneView.setUint32(60, text.length * 8);
    buf = one;
    view = oneView;
  } else {
    const data = encoder.encode(text);
    // Padding: 0x80, zeros, then the bit length as a 64-bit big-endian number; a multiple of 64 bytes.
    buf = new Uint8Array(Math.ceil((data.length + 9) / 64) * 64);
    buf.set(data);
    buf[data.length] = 0x80;
    view = new DataView(buf.buffer);
    const bits = data.length * 8;
    view.setUint32(buf.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(buf.length - 4, bits >>> 0);
  }
  h.set(H0);
  for (let off = 0; off < buf.length; off += 64) compress(view, off);
  let out = "";
  for (let i = 0; i < 8; i++) out += (h[i] as number).toString(16).padStart(8, "0");
  return out;
}

const H0 = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));

function compress(view: DataView, off: number): void {
  for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
  for (let i = 16; i < 64; i++) {
    const w15 = w[i - 15] as number, w2 = w[i - 2] as number;
    const s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >>> 3);
    const s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >>> 10);
    w[i] = ((w[i - 16] as number) + s0 + (w[i - 7] as number) + s1) >>> 0;
  }
  let a = h[0] as number, b = h[1] as number, c = h[2] as number, d = h[3] as number;
  let e = h[4] as number, f = h[5] as number, g = h[6] as number, hh = h[7] as number;
  for (let i = 0; i < 64; i++) {
    const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + (K[i] as number) + (w[i] as number)) >>> 0;
    const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) >>> 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) >>> 0;
  }
  h[0] = (h[0] as number) + a; h[1] = (h[1] as number) + b; h[2] = (h[2] as number) + c; h[3] = (h[3] as number) + d;
  h[4] = (h[4] as number) + e; h[5] = (h[5] as number) + f; h[6] = (h[6] as number) + g; h[7] = (h[7] as number) + hh;
}
