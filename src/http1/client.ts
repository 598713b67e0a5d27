/**
 * The provider's HTTP/1.1 client for the proxy's requests without a body (GET, DELETE,
 * OPTIONS): the request written by hand on a kept-alive connection from the front door's pool
 * (pool.ts), the response head parsed by the front door's parser (wire.ts), and the body de-framed
 * (Content-Length, chunked encoding or the connection's close) and streamed to the caller. Deno's
 * fetch spends about 15 µs more per request. A connection goes back to the pool only once its
 * response was read to the end.
 */

import { BadGatewayError } from "../errors.ts";
import { closeQuietly, fill, HeadTooLarge, UpstreamPool, type Wire, writeAll } from "./pool.ts";
import { bodyless, decodeLatin1, findHeadEnd, parseResponseHead, WireError } from "./wire.ts";

/** One upstream response: status, headers as pairs, and the body (bytes or a stream). */
export interface Http1Response {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null;
}

/** The largest response head, and the longest chunk-size line, accepted. */
const MAX_HEAD = 64 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Requests to replicas over pooled connections, per `ip:port`. */
export class Http1Client {
  readonly #pool = new UpstreamPool();

  /**
   * Sends a request without a body and resolves with the response head; the signal aborts the
   * request (and closes its connection). A pooled connection the server closed meanwhile is
   * replaced once.
   */
  async request(
    ip: string,
    port: number,
    method: string,
    pathAndQuery: string,
    headers: [string, string][],
    signal: AbortSignal,
  ): Promise<Http1Response> {
    const key = `${ip}:${port}`;
    let head = `${method} ${pathAndQuery} HTTP/1.1\r\nhost: ${key}\r\n`;
    for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
    const bytes = enc.encode(head + "\r\n");
    for (let attempt = 0;; attempt++) {
      const pooled = attempt === 0 ? this.#pool.take(key) : undefined;
      const w = pooled ?? await this.#pool.connect(ip, port);
      const onAbort = () => closeQuietly(w.tcp);
      signal.addEventListener("abort", onAbort, { once: true });
      const unlisten = () => signal.removeEventListener("abort", onAbort);
      try {
        await writeAll(w.tcp, bytes).catch((err) => {
          throw pooled ? new StaleConnection() : err;
        });
        return await this.#readResponse(w, key, method, unlisten);
      } catch (err) {
        unlisten();
        closeQuietly(w.tcp);
        if (pooled && err instanceof StaleConnection && !signal.aborted) {
          // The others that idled as long were most likely closed with it.
          this.#pool.drop(key);
          continue;
        }
        throw err instanceof StaleConnection
          ? new BadGatewayError("the function closed the connection without answering")
          : err;
      }
    }
  }

  /** Closes the idle connections to an address (its replica is gone). */
  forget(ip: string, port: number): void {
    this.#pool.drop(`${ip}:${port}`);
  }

  async #readResponse(
    w: Wire,
    key: string,
    method: string,
    unlisten: () => void,
  ): Promise<Http1Response> {
    for (let first = true;; first = false) {
      const at = await readHead(w, first);
      let head;
      try {
        head = parseResponseHead(decodeLatin1(w.buf.subarray(w.start, at.end)));
      } catch (err) {
        throw err instanceof WireError ? new BadGatewayError(err.message) : err;
      }
      w.start = at.body;
      if (head.status < 200) continue; // an interim response; the real one follows
      const close = head.close;
      const done = (reuse: boolean) => {
        unlisten();
        if (reuse && !close) this.#pool.give(key, w);
        else closeQuietly(w.tcp);
      };
      const res: Http1Response = {
        status: head.status,
        statusText: head.reason,
        headers: head.headers.map((h) => [h.name, h.value]),
        body: null,
      };
      if (bodyless(method, head.status) || head.contentLength === 0) {
        // Not after HEAD: some servers (busybox httpd's CGI) send a body anyway, and bytes that
        // arrive later would be read as the next request's answer.
        done(method !== "HEAD");
      } else if (head.chunked) {
        res.body = chunkedBody(w, done);
      } else if (head.contentLength > 0) {
        const length = head.contentLength;
        if (w.end - w.start >= length) {
          // The usual small answer is already in the buffer: no stream needed.
          res.body = w.buf.slice(w.start, w.start + length);
          w.start += length;
          done(true);
        } else {
          res.body = lengthBody(w, length, done);
        }
      } else {
        res.body = closeBody(w, done);
      }
      return res;
    }
  }
}

/** A pooled connection ended before the first byte of its response. */
class StaleConnection extends Error {}

/** Reads more of a response; false at the end of the stream. */
async function more(w: Wire): Promise<boolean> {
  try {
    return await fill(w, MAX_HEAD);
  } catch (err) {
    if (err instanceof HeadTooLarge) {
      throw new BadGatewayError("the function's response head (or a chunk-size line) is too large");
    }
    throw err;
  }
}

/** Reads until the response head is in the buffer; where it ends and where its body starts. */
async function readHead(w: Wire, first: boolean): Promise<{ end: number; body: number }> {
  let scanned = 0; // bytes after w.start already searched
  for (;;) {
    const at = findHeadEnd(w.buf, w.start, w.end, w.start + scanned);
    if (at) return at;
    const before = w.end - w.start;
    scanned = Math.max(0, before - 2);
    let got: boolean;
    try {
      got = await more(w);
    } catch (err) {
      if (first && before === 0 && !(err instanceof BadGatewayError)) throw new StaleConnection();
      throw err;
    }
    if (!got) {
      if (first && before === 0) throw new StaleConnection();
      throw new BadGatewayError("the function closed the connection in the middle of its answer");
    }
  }
}

/** A body stream whose `pull` fails the stream (and closes the connection) on an error. */
function bodyStream(
  done: (reuse: boolean) => void,
  pull: (ctl: ReadableStreamDefaultController<Uint8Array>) => Promise<void>,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        await pull(ctl);
      } catch (err) {
        done(false);
        ctl.error(err);
      }
    },
    cancel() {
      done(false);
    },
  }, { highWaterMark: 0 });
}

/** Moves up to `max` buffered bytes (reading more when none are) into the stream. */
async function forward(
  w: Wire,
  ctl: ReadableStreamDefaultController<Uint8Array>,
  max: number,
  early: string,
): Promise<number> {
  if (w.start === w.end && !(await more(w))) throw new BadGatewayError(early);
  const n = Math.min(max, w.end - w.start);
  ctl.enqueue(w.buf.slice(w.start, w.start + n));
  w.start += n;
  return n;
}

function lengthBody(w: Wire, length: number, done: (reuse: boolean) => void) {
  let left = length;
  return bodyStream(done, async (ctl) => {
    left -= await forward(w, ctl, left, "the function's body ended early");
    if (left === 0) {
      done(true);
      ctl.close();
    }
  });
}

function closeBody(w: Wire, done: (reuse: boolean) => void) {
  return bodyStream(done, async (ctl) => {
    if (w.start === w.end && !(await more(w))) {
      done(false);
      ctl.close();
      return;
    }
    ctl.enqueue(w.buf.slice(w.start, w.end));
    w.start = w.end;
  });
}

function chunkedBody(w: Wire, done: (reuse: boolean) => void) {
  const early = "the function's chunked body ended early";
  let left = 0; // bytes left in the current chunk
  let inChunk = false;
  // One line of the framing, CR LF or bare LF ended (as the front door's ChunkedScanner reads it).
  const line = async (): Promise<string> => {
    for (;;) {
      for (let i = w.start; i < w.end; i++) {
        if (w.buf[i] === 10) {
          const end = i > w.start && w.buf[i - 1] === 13 ? i - 1 : i;
          const s = dec.decode(w.buf.subarray(w.start, end));
          w.start = i + 1;
          return s;
        }
      }
      if (!(await more(w))) throw new BadGatewayError(early);
    }
  };
  return bodyStream(done, async (ctl) => {
    if (!inChunk) {
      const hex = (await line()).split(";")[0].trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
        throw new BadGatewayError("the function sent a malformed chunk size");
      }
      left = parseInt(hex, 16);
      if (left === 0) {
        while ((await line()) !== "") { /* trailers are dropped */ }
        done(true);
        ctl.close();
        return;
      }
      inChunk = true;
    }
    left -= await forward(w, ctl, left, early);
    if (left === 0) {
      if ((await line()) !== "") throw new BadGatewayError("the function sent a malformed chunk");
      inChunk = false;
    }
  });
}
