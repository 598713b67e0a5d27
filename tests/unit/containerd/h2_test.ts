/**
 * The HTTP/2 client against a scripted server on a unix socket that writes frames byte by byte as
 * the protocol allows them but Node.js's server never sends them: padding, a header block split
 * into CONTINUATION frames, a message split over DATA frames, PING and SETTINGS to acknowledge,
 * and RST_STREAM.
 */

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hpackEncode } from "../../../src/containerd/hpack.ts";
import { loadProtoApi } from "../../../src/containerd/proto.ts";
import { GrpcRpc } from "../../../src/containerd/rpc.ts";
import { UnavailableError } from "../../../src/errors.ts";

const PROTO = `
syntax = "proto3";
package t;
message Blob { bytes data = 1; }
service S { rpc Echo(Blob) returns (Blob); }
`;

function frame(type: number, flags: number, id: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length << 8 | type);
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, id);
  out.set(payload, 9);
  return out;
}

const padded = (body: Uint8Array, pad: number) => {
  const out = new Uint8Array(1 + body.length + pad);
  out[0] = pad;
  out.set(body, 1);
  return out;
};

/** Reads the client's frames: type, flags, stream and payload, one at a time. */
class FrameReader {
  #buf = new Uint8Array(0);
  constructor(private conn: Deno.Conn) {}
  async #fill(n: number) {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(65536);
      const got = await this.conn.read(chunk);
      if (got === null) throw new Error("client closed");
      const next = new Uint8Array(this.#buf.length + got);
      next.set(this.#buf);
      next.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = next;
    }
  }
  async take(n: number): Promise<Uint8Array> {
    await this.#fill(n);
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }
  async next() {
    const head = await this.take(9);
    const v = new DataView(head.buffer);
    const len = v.getUint32(0) >>> 8;
    return { type: head[3], flags: head[4], id: v.getUint32(5), payload: await this.take(len) };
  }
  /** Frames read while looking for another, in order. */
  #held: Array<{ type: number; flags: number; id: number; payload: Uint8Array }> = [];
  /** The first frame, held or new, of `type` on stream `id` with all of `flags`. */
  async until(type: number, id: number, flags = 0) {
    const match = (f: { type: number; flags: number; id: number }) =>
      f.type === type && f.id === id && (f.flags & flags) === flags;
    const at = this.#held.findIndex(match);
    if (at >= 0) return this.#held.splice(at, 1)[0];
    for (;;) {
      const f = await this.next();
      if (match(f)) return f;
      this.#held.push(f);
    }
  }
}

Deno.test("HTTP/2 client: padding, CONTINUATION, split messages, PING, SETTINGS and RST_STREAM", async () => {
  const dir = await mkdtemp(join(tmpdir(), "faasd-h2-"));
  const socket = join(dir, "s.sock");
  const listener = Deno.listen({ transport: "unix", path: socket });
  const seen: string[] = [];
  const server = (async () => {
    const conn = await listener.accept();
    const r = new FrameReader(conn);
    const preface = new TextDecoder().decode(await r.take(24));
    assert.equal(preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    // Our SETTINGS (a smaller frame size is allowed only up from 16384, so it stays) and a PING.
    const settings = new Uint8Array(6);
    new DataView(settings.buffer).setUint16(0, 4); // INITIAL_WINDOW_SIZE
    new DataView(settings.buffer).setUint32(2, 1_000_000);
    await conn.write(frame(4, 0, 0, settings));
    await conn.write(frame(6, 0, 0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])));
    await r.until(4, 0, 0x1);
    seen.push("settings ack");
    const ping = await r.until(6, 0, 0x1);
    seen.push(`ping ack ${[...ping.payload].join(",")}`);

    // Stream 1: answered with a padded HEADERS + CONTINUATION, the message over two padded DATA
    // frames, then trailers.
    await r.until(0, 1, 0x1);
    const head = hpackEncode([[":status", "200"], ["content-type", "application/grpc"]]);
    await conn.write(frame(1, 0x8, 1, padded(head.subarray(0, 3), 4))); // PADDED, no END_HEADERS
    await conn.write(frame(9, 0x4, 1, head.subarray(3))); // CONTINUATION, END_HEADERS
    const message = new Uint8Array([0, 0, 0, 0, 4, 0x0a, 0x02, 0x68, 0x69]); // Blob{data:"hi"}
    await conn.write(frame(0, 0x8, 1, padded(message.subarray(0, 6), 2)));
    await conn.write(frame(0, 0x8, 1, padded(message.subarray(6), 0)));
    await conn.write(frame(1, 0x5, 1, hpackEncode([["grpc-status", "0"]])));

    // Stream 3: reset.
    await r.until(0, 3, 0x1);
    const code = new Uint8Array(4);
    new DataView(code.buffer).setUint32(0, 2); // INTERNAL_ERROR
    await conn.write(frame(3, 0, 3, code));
    // The client's window updates may still come; the test ends when the client closes.
    await r.until(255, 0).catch(() => {});
    conn.close();
  })();
  const rpc = new GrpcRpc(socket, loadProtoApi({ "t.proto": PROTO }));
  try {
    const reply = await rpc.unary<{ data: Uint8Array }>("t.S", "Echo", {});
    assert.equal(new TextDecoder().decode(reply.data), "hi");
    await assert.rejects(
      rpc.unary("t.S", "Echo", {}),
      (err: Error) =>
        err instanceof UnavailableError && /reset the stream \(code 2\)/.test(err.message),
    );
  } finally {
    await rpc.close();
    await server;
    listener.close();
    await rm(dir, { recursive: true, force: true });
  }
  assert.deepEqual(seen, ["settings ack", "ping ack 1,2,3,4,5,6,7,8"]);
});
