/**
 * A small HTTP/2 client connection (RFC 9113) for gRPC over containerd's unix socket: streams,
 * HPACK headers, flow control both ways, SETTINGS, PING, RST_STREAM and GOAWAY. No TLS, no
 * server push, no priorities. One connection carries every call; when it breaks, its streams fail
 * and the next call opens a new one (see rpc.ts).
 */

import { HpackDecoder, hpackEncode } from "./hpack.ts";

/** A byte stream: Deno's unix socket, or Node.js's (see `connectUnix`). */
export interface ByteStream {
  read(buf: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<void>;
  close(): void;
  /** Whether the open socket alone keeps the process alive. */
  setRef(ref: boolean): void;
}

const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7 } as const;
const WINDOW_UPDATE = 8;
const CONTINUATION = 9;
const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 };
const SETTING = { HEADER_TABLE_SIZE: 1, ENABLE_PUSH: 2, INITIAL_WINDOW_SIZE: 4, MAX_FRAME_SIZE: 5 };
/** RST_STREAM's CANCEL code. */
export const CANCEL = 0x8;

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** What we let the server send ahead, per stream and per connection. */
const OUR_WINDOW = 16 * 1024 * 1024;
const DEFAULT_WINDOW = 65_535;

/** What one stream hears from the server. */
export interface StreamEvents {
  headers(headers: Array<[string, string]>, endStream: boolean): void;
  data(chunk: Uint8Array, endStream: boolean): void;
  /** The stream ended abnormally: RST_STREAM, GOAWAY, or the connection broke. */
  error(err: Error, code?: number): void;
}

interface Stream {
  id: number;
  events: StreamEvents;
  sendWindow: number;
  /** Writers waiting for window. */
  waiting: Array<() => void>;
}

/**
 * A connection or stream error, with the HTTP/2 error code when the peer sent one. `refused`:
 * the server did not process the stream at all (GOAWAY past it, or REFUSED_STREAM), so the
 * request can be sent again.
 */
export class Http2Error extends Error {
  override name = "Http2Error";
  constructor(message: string, readonly code?: number, readonly refused = false) {
    super(message);
  }
}

const REFUSED_STREAM = 0x7;

export class Http2Connection {
  readonly #io: ByteStream;
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, Stream>();
  #nextId = 1;
  #sendWindow = DEFAULT_WINDOW;
  #initialSendWindow = DEFAULT_WINDOW;
  #maxFrame = 16_384;
  #connWaiting: Array<() => void> = [];
  #writing: Promise<void> = Promise.resolve();
  #failure: Error | undefined;
  /** A header block being continued: its stream, flags and fragments. */
  #continued: { id: number; endStream: boolean; parts: Uint8Array[] } | undefined;
  /** Set once the peer sends GOAWAY: no new streams. */
  #goingAway = false;

  constructor(io: ByteStream) {
    this.#io = io;
    io.setRef(false);
    const settings = new Uint8Array(12);
    const view = new DataView(settings.buffer);
    view.setUint16(0, SETTING.ENABLE_PUSH);
    view.setUint32(2, 0);
    view.setUint16(6, SETTING.INITIAL_WINDOW_SIZE);
    view.setUint32(8, OUR_WINDOW);
    const connWindow = new Uint8Array(4);
    new DataView(connWindow.buffer).setUint32(0, OUR_WINDOW - DEFAULT_WINDOW);
    this.#send(concat([
      PREFACE,
      frame(FRAME.SETTINGS, 0, 0, settings),
      frame(WINDOW_UPDATE, 0, 0, connWindow),
    ])).catch(() => {});
    void this.#readLoop();
  }

  /**
   * Whether new streams can be opened on this connection: not after a failure or a GOAWAY, nor
   * when stream IDs (31 bits, odd ones ours) run out: the next call then opens a new connection.
   */
  get usable(): boolean {
    return !this.#failure && !this.#goingAway && this.#nextId < 0x7fff_0000;
  }

  /** Opens a stream with a request header block; `endStream` when there is no body. */
  open(headers: ReadonlyArray<readonly [string, string]>, events: StreamEvents): number {
    if (this.#failure) throw this.#failure;
    const id = this.#nextId;
    this.#nextId += 2;
    this.#streams.set(id, {
      id,
      events,
      sendWindow: this.#initialSendWindow,
      waiting: [],
    });
    if (this.#streams.size === 1) this.#io.setRef(true);
    // A block larger than a frame goes on in CONTINUATION frames, with nothing in between.
    const block = hpackEncode(headers);
    const frames: Uint8Array[] = [];
    for (let at = 0; at < block.length || at === 0; at += this.#maxFrame) {
      const part = block.subarray(at, at + this.#maxFrame);
      const last = at + this.#maxFrame >= block.length;
      frames.push(
        frame(at === 0 ? FRAME.HEADERS : CONTINUATION, last ? FLAG.END_HEADERS : 0, id, part),
      );
    }
    this.#send(concat(frames)).catch(() => {});
    return id;
  }

  /** Sends body bytes on stream `id`, within the peer's flow-control windows. */
  async sendData(id: number, data: Uint8Array, endStream: boolean): Promise<void> {
    let at = 0;
    do {
      const s = this.#streams.get(id);
      if (!s) return; // ended meanwhile (reset, error, or the server's answer)
      if (this.#failure) throw this.#failure;
      const room = Math.min(this.#sendWindow, s.sendWindow, this.#maxFrame, data.length - at);
      if (room <= 0 && data.length > at) {
        await new Promise<void>((resolve) => {
          if (this.#sendWindow <= 0) this.#connWaiting.push(resolve);
          else s.waiting.push(resolve);
        });
        continue;
      }
      const chunk = data.subarray(at, at + room);
      at += room;
      this.#sendWindow -= room;
      s.sendWindow -= room;
      const last = at >= data.length && endStream;
      await this.#send(frame(FRAME.DATA, last ? FLAG.END_STREAM : 0, id, chunk));
    } while (at < data.length);
  }

  /** Ends stream `id` abnormally (RST_STREAM); nothing more is delivered for it. */
  reset(id: number, code = CANCEL): void {
    const s = this.#streams.get(id);
    if (!s) return;
    this.#forget(s);
    const body = new Uint8Array(4);
    new DataView(body.buffer).setUint32(0, code);
    this.#send(frame(FRAME.RST_STREAM, 0, id, body)).catch(() => {});
  }

  /** Closes the connection; open streams fail with `reason`. */
  close(reason = new Http2Error("the connection was closed")): void {
    this.#fail(reason);
  }

  #forget(s: Stream): void {
    this.#streams.delete(s.id);
    for (const w of s.waiting.splice(0)) w();
    if (this.#streams.size === 0) {
      this.#io.setRef(false);
      // A connection that takes no new streams closes with its last one.
      if (!this.usable) queueMicrotask(() => this.close());
    }
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#io.close();
    for (const s of [...this.#streams.values()]) {
      this.#forget(s);
      s.events.error(err);
    }
    for (const w of this.#connWaiting.splice(0)) w();
  }

  /** Writes in order, one write at a time. */
  #send(bytes: Uint8Array): Promise<void> {
    const done = this.#writing.then(() => {
      if (this.#failure) throw this.#failure;
      return this.#io.write(bytes);
    });
    this.#writing = done.catch((err) => this.#fail(asError(err)));
    return done;
  }

  async #readLoop(): Promise<void> {
    let buf = new Uint8Array(64 * 1024);
    let start = 0, end = 0;
    try {
      for (;;) {
        while (end - start >= 9) {
          const len = (buf[start] << 16) | (buf[start + 1] << 8) | buf[start + 2];
          if (end - start < 9 + len) break;
          const type = buf[start + 3], flags = buf[start + 4];
          const id = ((buf[start + 5] & 0x7f) << 24) | (buf[start + 6] << 16) |
            (buf[start + 7] << 8) | buf[start + 8];
          // A copy: stream consumers keep payloads after the buffer moves on.
          this.#frame(type, flags, id, buf.slice(start + 9, start + 9 + len));
          start += 9 + len;
        }
        if (start === end) start = end = 0;
        const need = end - start >= 9
          ? 9 + ((buf[start] << 16) | (buf[start + 1] << 8) | buf[start + 2])
          : 9;
        if (buf.length - start < need) {
          const next = new Uint8Array(Math.max(buf.length, need * 2));
          next.set(buf.subarray(start, end));
          end -= start;
          start = 0;
          buf = next;
        } else if (buf.length - end < 4096 && start > 0) {
          buf.copyWithin(0, start, end);
          end -= start;
          start = 0;
        }
        const n = await this.#io.read(buf.subarray(end));
        if (n === null) throw new Http2Error("containerd closed the connection");
        end += n;
      }
    } catch (err) {
      this.#fail(asError(err));
    }
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.#continued && type !== CONTINUATION) {
      throw new Http2Error("a header block was interrupted by another frame");
    }
    switch (type) {
      case FRAME.DATA: {
        const body = unpad(payload, flags);
        const s = this.#streams.get(id);
        const end = (flags & FLAG.END_STREAM) !== 0;
        if (payload.length > 0) this.#windowUpdate(s && !end ? id : 0, payload.length);
        if (s) {
          if (end) this.#forget(s);
          s.events.data(body, end);
        }
        return;
      }
      case FRAME.HEADERS: {
        let block = unpad(payload, flags);
        if (flags & FLAG.PRIORITY) block = block.subarray(5);
        const endStream = (flags & FLAG.END_STREAM) !== 0;
        if (flags & FLAG.END_HEADERS) this.#headers(id, endStream, block);
        else this.#continued = { id, endStream, parts: [block.slice()] };
        return;
      }
      case CONTINUATION: {
        const c = this.#continued;
        if (!c || c.id !== id) throw new Http2Error("CONTINUATION without its HEADERS");
        c.parts.push(payload.slice());
        if (flags & FLAG.END_HEADERS) {
          this.#continued = undefined;
          this.#headers(id, c.endStream, concat(c.parts));
        }
        return;
      }
      case FRAME.RST_STREAM: {
        const s = this.#streams.get(id);
        if (!s) return;
        const code = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
        this.#forget(s);
        s.events.error(
          new Http2Error(
            `containerd reset the stream (code ${code})`,
            code,
            code === REFUSED_STREAM,
          ),
          code,
        );
        return;
      }
      case FRAME.SETTINGS: {
        if (flags & FLAG.ACK) return;
        const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
        for (let at = 0; at + 6 <= payload.length; at += 6) {
          const key = view.getUint16(at), value = view.getUint32(at + 2);
          if (key === SETTING.INITIAL_WINDOW_SIZE) {
            const delta = value - this.#initialSendWindow;
            this.#initialSendWindow = value;
            for (const s of this.#streams.values()) {
              s.sendWindow += delta;
              if (delta > 0) { for (const w of s.waiting.splice(0)) w(); }
            }
          } else if (key === SETTING.MAX_FRAME_SIZE) {
            this.#maxFrame = value;
          }
        }
        this.#send(frame(FRAME.SETTINGS, FLAG.ACK, 0, new Uint8Array())).catch(() => {});
        return;
      }
      case FRAME.PING:
        if (!(flags & FLAG.ACK)) {
          this.#send(frame(FRAME.PING, FLAG.ACK, 0, payload)).catch(() => {});
        }
        return;
      case FRAME.GOAWAY: {
        const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
        const lastId = view.getUint32(0) & 0x7fffffff, code = view.getUint32(4);
        this.#goingAway = true;
        const why = new TextDecoder().decode(payload.subarray(8));
        for (const s of [...this.#streams.values()]) {
          if (s.id > lastId) {
            this.#forget(s);
            s.events.error(
              new Http2Error(
                `containerd is closing the connection (GOAWAY ${code}) ${why}`,
                code,
                true,
              ),
            );
          }
        }
        if (this.#streams.size === 0) this.close(new Http2Error(`GOAWAY ${code} ${why}`));
        return;
      }
      case WINDOW_UPDATE: {
        const inc = new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff;
        if (id === 0) {
          this.#sendWindow += inc;
          for (const w of this.#connWaiting.splice(0)) w();
        } else {
          const s = this.#streams.get(id);
          if (s) {
            s.sendWindow += inc;
            for (const w of s.waiting.splice(0)) w();
          }
        }
        return;
      }
    }
  }

  #headers(id: number, endStream: boolean, block: Uint8Array): void {
    // Decoded even for a stream we dropped: the dynamic table must stay in step.
    const headers = this.#decoder.decode(block);
    const s = this.#streams.get(id);
    if (!s) return;
    if (endStream) this.#forget(s);
    s.events.headers(headers, endStream);
  }

  /**
   * Gives back what a DATA frame used of our windows (we buffer what arrives): the connection's,
   * and stream `id`'s unless it is 0 (a stream that has ended needs none).
   */
  #windowUpdate(id: number, n: number): void {
    const body = new Uint8Array(4);
    new DataView(body.buffer).setUint32(0, n);
    const frames = [frame(WINDOW_UPDATE, 0, 0, body)];
    if (id !== 0) frames.push(frame(WINDOW_UPDATE, 0, id, body));
    this.#send(concat(frames)).catch(() => {});
  }
}

function frame(type: number, flags: number, id: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  out[0] = (payload.length >> 16) & 0xff;
  out[1] = (payload.length >> 8) & 0xff;
  out[2] = payload.length & 0xff;
  out[3] = type;
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, id & 0x7fffffff);
  out.set(payload, 9);
  return out;
}

function unpad(payload: Uint8Array, flags: number): Uint8Array {
  if (!(flags & FLAG.PADDED)) return payload;
  const pad = payload[0];
  if (pad >= payload.length) throw new Http2Error("padding longer than the frame");
  return payload.subarray(1, payload.length - pad);
}

/** The parts, one after the other, in one new array. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
