import { randomBytes } from "node:crypto";
import { connect } from "node:net";

/**
 * Logs in to a NATS WebSocket listener as a browser would (RFC 6455, no
 * extensions) and answers what the server said to CONNECT + PING: "PONG"
 * when it took the login, or its -ERR line. Node 20 has no WebSocket client,
 * and this needs nothing but a socket.
 */
export async function natsWebSocketLogin(host: string, port: number, user: string, pass: string, timeoutMs = 5000): Promise<string> {
  const s = connect(port, host);
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from ws://${host}:${port} in ${timeoutMs} ms`)), timeoutMs);
      const done = (v: string) => {
        clearTimeout(timer);
        resolve(v);
      };
      s.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.on("close", () => done("closed"));
      let buf = Buffer.alloc(0);
      let upgraded = false;
      let text = "";
      s.write(`GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      s.on("data", (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        if (!upgraded) {
          const end = buf.indexOf("\r\n\r\n");
          if (end < 0) return;
          const head = buf.subarray(0, end).toString();
          if (!/^HTTP\/1\.1 101/.test(head)) return done(`upgrade refused: ${head.split("\r\n")[0]}`);
          upgraded = true;
          buf = buf.subarray(end + 4);
        }
        // Server frames are unmasked: [FIN|opcode][len] (+2 or +8 bytes of length) payload.
        while (buf.length >= 2) {
          let len = buf[1]! & 0x7f, off = 2;
          if (len === 126) [len, off] = [buf.readUInt16BE(2), 4];
          else if (len === 127) [len, off] = [Number(buf.readBigUInt64BE(2)), 10];
          if (buf.length < off + len) return;
          text += buf.subarray(off, off + len).toString();
          buf = buf.subarray(off + len);
        }
        if (text.startsWith("INFO ") && !text.includes("\r\nCONNECT-SENT")) {
          text += "\r\nCONNECT-SENT";
          sendFrame(`CONNECT ${JSON.stringify({ user, pass, verbose: false, pedantic: false, protocol: 1 })}\r\nPING\r\n`);
        }
        const answer = /(PONG|-ERR [^\r\n]*)/.exec(text.slice(text.indexOf("CONNECT-SENT")));
        if (answer) done(answer[1]!);
      });
      function sendFrame(payload: string) {
        const data = Buffer.from(payload);
        const mask = randomBytes(4);
        const head = data.length < 126 ? Buffer.from([0x81, 0x80 | data.length]) : Buffer.from([0x81, 0x80 | 126, data.length >> 8, data.length & 0xff]);
        const body = Buffer.from(data.map((b, i) => b ^ mask[i % 4]!));
        s.write(Buffer.concat([head, mask, body]));
      }
    });
  } finally {
    s.destroy();
  }
}
