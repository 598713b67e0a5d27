/**
 * One function call through the gateway's front door (front_door.ts): route it, send the request
 * head (the client's header lines copied as bytes, less hop-by-hop ones, plus the call headers) and
 * body to a pooled connection to the replica, and write the response back with its framing; the
 * upstream timeout, 502/504 with their cause. Also the byte-level helpers both share: reading a
 * head, streaming a request body, copying a response body.
 */

import { randomUUID } from "node:crypto";
import {
  BadGatewayError,
  InvalidArgumentError,
  NotFoundError,
  PayloadTooLargeError,
  TimeoutError,
  UnavailableError,
} from "../errors.ts";
import type { Logger } from "../log.ts";
import type { FunctionTarget } from "../provider/function_path.ts";
import type { Route } from "../provider/manager.ts";
import { type Deadlines, HOP_BY_HOP, type Router } from "../provider/proxy.ts";
import {
  bodyless,
  ChunkedScanner,
  connectionOptions,
  CONTINUE,
  decodeLatin1,
  findHeadEnd,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
  WireError,
  writeLatin1,
} from "../http1/wire.ts";
import {
  closeQuietly,
  fill,
  HeadTooLarge,
  readAhead,
  type UpstreamPool,
  type Wire,
  writeAll,
} from "../http1/pool.ts";

/** What a function call needs from the gateway. */
export interface CallDeps {
  /** Picks a ready replica (and may scale from zero): the provider's function manager. */
  router: Router;
  /** How long a call waits for a ready replica. */
  readyTimeoutMs: number;
  /** How long a function may take to send its response headers (unless it sets its own). */
  upstreamTimeoutMs: number;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  log: Logger;
}

/** The front door's shared state a call uses. */
export interface CallContext {
  deps: CallDeps;
  pool: UpstreamPool;
  deadlines: Deadlines;
}

/** Largest request or response head, in bytes (431 for a request, 502 for a response). */
export const MAX_HEAD = 64 * 1024;
/** A pooled connection idle longer than this is not used for a request with a body. */
export const BODY_REUSE_MS = 1000;

// Hop-by-hop headers, and the call headers the gateway sets itself.
const DROP_REQUEST = new Set<string>([
  ...HOP_BY_HOP,
  "host",
  "expect",
  "x-call-id",
  "x-start-time",
  "x-forwarded-host",
]);
const DROP_RESPONSE = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
  "x-call-id",
  "x-start-time",
  "x-duration-seconds",
]);

/** The response head of a replica and where it came from. */
export interface Upstream {
  status: number;
  head: ResponseHead;
  text: string;
  up: Wire;
  key: string;
}

/** The client closed its connection while its call waited for a replica: nobody to answer. */
export class ClientGoneError extends Error {
  override name = "ClientGoneError";
}

/** One call through the front door: route, forward, answer. */
export class FunctionCall {
  readonly #ctx: CallContext;
  readonly #c: Wire;
  readonly #head: RequestHead;
  readonly #headBase: number;
  readonly #name: string;
  readonly #namespace: string;
  readonly #started: number;
  #route: Route | undefined;
  #up: Wire | undefined;
  #deadline: { deadline: number; abort(): void } | undefined;
  #timeoutMs = 0;
  #timedOut = false;
  #aborted: Promise<never> | undefined;
  #abort: ((err: Error) => void) | undefined;
  #upload: Promise<void> | undefined;
  #uploadError: unknown;
  #callId = "";
  #startNs = "";
  /** The request body has been read to its end. */
  uploaded = false;

  constructor(
    ctx: CallContext,
    c: Wire,
    head: RequestHead,
    headStart: number,
    target: FunctionTarget,
    started: number,
  ) {
    this.#ctx = ctx;
    this.#c = c;
    this.#head = head;
    this.#headBase = headStart;
    this.#name = target.name;
    this.#namespace = target.namespace;
    this.#started = started;
    this.uploaded = !head.chunked && head.contentLength <= 0;
  }

  get #fn(): string {
    return `"${this.#name}.${this.#namespace}"`;
  }

  /** Routes, sends the request and resolves with the response head. */
  async run(pathAndQuery: string, hasBody: boolean): Promise<Upstream> {
    const { deps, pool, deadlines } = this.#ctx;
    const head = this.#head;
    let callId = "";
    for (const h of head.headers) if (h.name === "x-call-id" && h.value) callId = h.value;
    this.#callId = callId || randomUUID();
    this.#startNs = `${BigInt(Date.now()) * 1_000_000n}`;
    const c = this.#c;
    let left: AbortController | undefined;
    let waiting = true;
    try {
      this.#route = await deps.router.route(this.#name, this.#namespace, {
        timeoutMs: deps.readyTimeoutMs,
        // Read only when the call must wait for a replica: then a client that leaves meanwhile
        // is noticed (its connection is read ahead) and the wait ends. What it sends meanwhile
        // (its body, a next request) is kept in the buffer; once that is full, nobody watches.
        get signal() {
          if (!left) {
            left = new AbortController();
            const gone = left;
            const watch = (): void => {
              readAhead(c, MAX_HEAD).then((more) => {
                if (!more) gone.abort();
                else if (waiting) watch();
              }, (err) => {
                if (!(err instanceof HeadTooLarge)) gone.abort();
              });
            };
            watch();
          }
          return left.signal;
        },
      });
      waiting = false;
    } catch (err) {
      waiting = false;
      if (err instanceof NotFoundError) throw err;
      if (left?.signal.aborted) {
        throw new ClientGoneError(`the client left while function ${this.#fn} had no replica`);
      }
      throw new UnavailableError(
        `function ${this.#fn} is not available: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const route = this.#route;
    if (left?.signal.aborted) {
      // The replica came as the client left: nothing is sent to it.
      route.release();
      this.#route = undefined;
      throw new ClientGoneError(`the client left while function ${this.#fn} had no replica`);
    }
    this.#timeoutMs = route.timeoutMs ?? deps.upstreamTimeoutMs;
    this.#deadline = {
      deadline: this.#started + this.#timeoutMs,
      abort: () => {
        this.#timedOut = true;
        this.#abort?.(new TimeoutError("timed out"));
        if (this.#up) closeQuietly(this.#up.tcp);
      },
    };
    deadlines.add(this.#deadline);
    const key = `${route.ip}:${route.port}`;
    const request = this.#requestHead(pathAndQuery, key, hasBody);
    // The body's first bytes, when they came with the head, go in the same write.
    let first = request;
    let sent = 0;
    if (hasBody && !head.chunked) {
      sent = Math.min(head.contentLength, c.end - c.start);
      first = new Uint8Array(request.length + sent);
      first.set(request);
      first.set(c.buf.subarray(c.start, c.start + sent), request.length);
      c.start += sent;
      if (sent === head.contentLength) this.uploaded = true;
    }
    for (let attempt = 0;; attempt++) {
      // A retry (the pooled connection was stale) goes on a fresh connection.
      const pooled = attempt === 0
        ? pool.take(key, hasBody ? BODY_REUSE_MS : undefined)
        : undefined;
      let up: Wire;
      try {
        up = pooled ?? await pool.connect(route.ip, route.port);
      } catch (err) {
        throw this.#unreachable(err);
      }
      this.#up = up;
      if (this.#timedOut) throw this.#timeout();
      try {
        await writeAll(up.tcp, first);
        if (head.expect === "100-continue" && !this.uploaded && attempt === 0) {
          await writeAll(c.tcp, CONTINUE);
        }
        if (!this.uploaded && !this.#upload) {
          this.#aborted = new Promise<never>((_, reject) => this.#abort = reject);
          this.#aborted.catch(() => {});
          const limit = this.#ctx.deps.maxBodyBytes;
          const left = head.contentLength - sent;
          this.#upload = streamBody(c, up, head.chunked, left, limit, this.#aborted).then(
            () => void (this.uploaded = true),
            (err) => {
              this.#uploadError = err;
              closeQuietly(up.tcp); // the replica must not take a partial body for a whole one
              throw err;
            },
          );
          this.#upload.catch(() => {});
        }
        const res = await this.#readResponse(up, this.#upload);
        deadlines.delete(this.#deadline);
        route.release();
        this.#route = undefined;
        return { ...res, up, key };
      } catch (err) {
        closeQuietly(up.tcp);
        // A kept-alive connection the replica closed before this request: once more, fresh.
        if (
          err instanceof StaleConnection && pooled && attempt === 0 && !hasBody && !this.#timedOut
        ) {
          pool.drop(key);
          continue;
        }
        throw err;
      }
    }
  }

  /** The request head for the replica: the client's, less hop-by-hop, plus the call headers. */
  #requestHead(pathAndQuery: string, key: string, hasBody: boolean): Uint8Array {
    const head = this.#head;
    let extra = "";
    let forwarded: string | undefined;
    const keep: { start: number; end: number }[] = [];
    let size = 0;
    const listed = connectionOptions(head.headers);
    for (const h of head.headers) {
      if (DROP_REQUEST.has(h.name) || listed.has(h.name)) continue;
      if (h.name === "content-length") {
        if (!hasBody && head.contentLength === 0) keep.push(h);
        else continue;
      } else if (h.name === "x-forwarded-for") {
        forwarded = forwarded === undefined ? h.value : `${forwarded}, ${h.value}`;
        continue;
      } else {
        keep.push(h);
      }
      size += h.end - h.start + 2;
    }
    if (head.chunked) extra += "transfer-encoding: chunked\r\n";
    else if (hasBody) extra += `content-length: ${head.contentLength}\r\n`;
    if (forwarded !== undefined) extra += `x-forwarded-for: ${forwarded}\r\n`;
    extra += `x-call-id: ${this.#callId}\r\nx-start-time: ${this.#startNs}\r\n` +
      `x-forwarded-host: ${head.host}\r\n\r\n`;
    const line = `${head.method} ${pathAndQuery} HTTP/1.1\r\nhost: ${key}\r\n`;
    const out = new Uint8Array(line.length + size + extra.length);
    let at = writeLatin1(line, out, 0);
    const src = this.#c.buf;
    // Header lines are copied from the client's bytes: the head's text and the buffer share
    // offsets, counted from where the head started.
    const base = this.#headBase;
    for (const h of keep) {
      out.set(src.subarray(base + h.start, base + h.end), at);
      at += h.end - h.start;
      out[at++] = 13;
      out[at++] = 10;
    }
    writeLatin1(extra, out, at);
    return out;
  }

  /** Reads the replica's response head (interim 1xx answers skipped). */
  async #readResponse(
    up: Wire,
    upload: Promise<void> | undefined,
  ): Promise<{ status: number; head: ResponseHead; text: string }> {
    for (let first = true;; first = false) {
      let at = findHeadEnd(up.buf, up.start, up.end);
      while (!at) {
        const before = up.end - up.start;
        const searched = Math.max(0, before - 2);
        let more: boolean;
        try {
          // A failed upload ends the wait (it closed the connection; its error is the one).
          more = await fill(up, MAX_HEAD);
        } catch (err) {
          if (err instanceof HeadTooLarge) {
            throw new BadGatewayError(
              `function ${this.#fn} sent a response head that is too large`,
            );
          }
          if (this.#uploadError !== undefined) throw this.#uploadError;
          if (first && before === 0 && !this.#timedOut) throw new StaleConnection();
          throw err;
        }
        if (!more) {
          if (upload && this.#uploadError === undefined) {
            await upload.catch(() => {});
          }
          if (this.#uploadError !== undefined) throw this.#uploadError;
          if (first && before === 0) throw new StaleConnection();
          throw new BadGatewayError(
            `function ${this.#fn} closed the connection in the middle of its answer`,
          );
        }
        at = findHeadEnd(up.buf, up.start, up.end, up.start + searched);
      }
      const text = decodeLatin1(up.buf.subarray(up.start, at.end));
      let head: ResponseHead;
      try {
        head = parseResponseHead(text);
      } catch (err) {
        throw new BadGatewayError(
          `function ${this.#fn} sent an invalid response: ${(err as Error).message}`,
        );
      }
      const base = up.start;
      up.start = at.body;
      if (head.status === 101) {
        throw new BadGatewayError(`function ${this.#fn} switched protocols, which was not asked`);
      }
      if (head.status < 200) continue; // 100 Continue, 103 Early Hints: the answer follows
      // Offsets of the header lines are relative to the head's start.
      this.#responseBase = base;
      return { status: head.status, head, text };
    }
  }

  #responseBase = 0;

  /** Writes the response (head and body) to the client; whether the connection stays open. */
  async respond(res: Upstream): Promise<boolean> {
    const { head, up, key } = res;
    const c = this.#c;
    const noBody = bodyless(this.#head.method, head.status);
    // A body that ends with the replica's connection (CGI behind busybox httpd) is sent on
    // chunked, so the client's connection stays open; unless it came with a transfer coding of
    // its own, when the client's connection ends with it.
    let hasCoding = false;
    for (const h of head.headers) if (h.name === "transfer-encoding") hasCoding = true;
    const rechunk = !noBody && head.closeDelimited && !hasCoding;
    // The client's connection also closes when the client asked, and when the request body was
    // not read to its end (the replica answered early): the rest of the upload goes on only
    // until the answer is out.
    const close = this.#head.close || (!noBody && head.closeDelimited && !rechunk) ||
      !this.uploaded;
    const base = this.#responseBase;
    let extra = `x-call-id: ${this.#callId}\r\nx-start-time: ${this.#startNs}\r\n` +
      `x-duration-seconds: ${((performance.now() - this.#started) / 1000).toFixed(6)}\r\n`;
    if (rechunk) extra += "transfer-encoding: chunked\r\n";
    if (close) extra += "connection: close\r\n";
    extra += "\r\n";
    const line = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
    let size = 0;
    const keep: { start: number; end: number }[] = [];
    const listed = connectionOptions(head.headers);
    for (const h of head.headers) {
      if (DROP_RESPONSE.has(h.name) || listed.has(h.name)) continue;
      if (noBody && h.name === "transfer-encoding") continue;
      // Transfer-Encoding frames the body (RFC 9112 §6.3): a Content-Length beside it must not
      // reach the client, which might trust it.
      if (h.name === "content-length" && (head.chunked || head.closeDelimited)) continue;
      keep.push(h);
      size += h.end - h.start + 2;
    }
    // With the body when it is all here already (the usual small answer): one write.
    let inline = 0;
    if (!noBody && head.contentLength >= 0) {
      inline = Math.min(head.contentLength, up.end - up.start);
    }
    const out = new Uint8Array(line.length + size + extra.length + inline);
    let at = writeLatin1(line, out, 0);
    for (const h of keep) {
      out.set(up.buf.subarray(base + h.start, base + h.end), at);
      at += h.end - h.start;
      out[at++] = 13;
      out[at++] = 10;
    }
    at = writeLatin1(extra, out, at);
    out.set(up.buf.subarray(up.start, up.start + inline), at);
    up.start += inline;
    let reusable = !head.close;
    try {
      await writeAll(c.tcp, out);
      if (noBody) {
        // Not after HEAD: some servers (busybox httpd's CGI) send a body anyway.
        if (this.#head.method === "HEAD") reusable = false;
      } else if (head.chunked) {
        const scanner = new ChunkedScanner();
        for (;;) {
          if (up.start < up.end) {
            let n: number;
            try {
              n = scanner.scan(up.buf, up.start, up.end);
            } catch (err) {
              throw new BadGatewayError(`function ${this.#fn}: ${(err as Error).message}`);
            }
            await writeAll(c.tcp, up.buf.subarray(up.start, up.start + n));
            up.start += n;
            if (scanner.done) break;
          }
          if (!(await fill(up, MAX_HEAD))) throw new BadGatewayError("chunked body ended early");
        }
      } else if (head.contentLength >= 0) {
        let left = head.contentLength - inline;
        while (left > 0) {
          if (up.start === up.end && !(await fill(up, MAX_HEAD))) {
            throw new BadGatewayError("body ended early");
          }
          const n = Math.min(left, up.end - up.start);
          await writeAll(c.tcp, up.buf.subarray(up.start, up.start + n));
          up.start += n;
          left -= n;
        }
      } else {
        reusable = false;
        for (;;) {
          if (up.start < up.end) {
            const data = up.buf.subarray(up.start, up.end);
            await writeAll(c.tcp, rechunk ? chunk(data) : data);
            up.start = up.end;
          }
          if (!(await fill(up, MAX_HEAD))) break;
        }
        if (rechunk) await writeAll(c.tcp, LAST_CHUNK);
      }
    } catch (err) {
      closeQuietly(up.tcp);
      this.#up = undefined;
      throw err;
    }
    this.#up = undefined;
    if (reusable && this.uploaded) {
      this.#ctx.pool.give(key, up);
    } else {
      closeQuietly(up.tcp);
    }
    return !close;
  }

  /** The error a failure before the response head becomes (mapped to its status later). */
  failure(err: unknown): unknown {
    if (this.#timedOut) return this.#timeout();
    if (err instanceof WireError) return new InvalidArgumentError(err.message);
    if (err instanceof StaleConnection) {
      return new BadGatewayError(`function ${this.#fn} closed the connection without answering`);
    }
    if (
      err instanceof NotFoundError || err instanceof UnavailableError ||
      err instanceof InvalidArgumentError ||
      err instanceof BadGatewayError || err instanceof PayloadTooLargeError ||
      err instanceof TimeoutError
    ) {
      return err;
    }
    return this.#unreachable(err);
  }

  #timeout(): TimeoutError {
    return new TimeoutError(
      `function ${this.#fn} did not answer within ${this.#timeoutMs / 1000}s`,
    );
  }

  #unreachable(err: unknown): BadGatewayError {
    return new BadGatewayError(`cannot reach function ${this.#fn}: ${(err as Error).message}`, {
      cause: err,
    });
  }

  /** Releases whatever the call still holds. */
  finish(): void {
    if (this.#deadline) this.#ctx.deadlines.delete(this.#deadline);
    this.#route?.release();
    this.#route = undefined;
    if (this.#up) closeQuietly(this.#up.tcp);
    this.#abort?.(new Error("finished"));
  }
}

/** A pooled connection ended before the first byte of its response. */
export class StaleConnection extends Error {
  override name = "StaleConnection";
}

/** Reads until a response head is complete; undefined when the connection ends before. */
export async function readHead(w: Wire): Promise<{ end: number; body: number } | undefined> {
  let at = findHeadEnd(w.buf, w.start, w.end);
  while (!at) {
    const searched = Math.max(0, w.end - w.start - 2);
    if (!(await fill(w, MAX_HEAD))) return undefined;
    at = findHeadEnd(w.buf, w.start, w.end, w.start + searched);
  }
  return at;
}

/**
 * Copies a request body from the client to `to`: `left` more bytes, or chunked until its last
 * chunk (passed on as it came), counting the payload against `limit`. Reads from the client race
 * `aborted`.
 */
export async function streamBody(
  c: Wire,
  to: Wire,
  chunked: boolean,
  left: number,
  limit: number,
  aborted: Promise<never>,
): Promise<void> {
  // Strict: the bytes go on as they came, to a server that must see the same chunks.
  const scanner = chunked ? new ChunkedScanner({ strict: true }) : undefined;
  for (;;) {
    if (c.start < c.end) {
      let n: number;
      if (scanner) {
        n = scanner.scan(c.buf, c.start, c.end);
        if (scanner.dataBytes > limit) {
          throw new PayloadTooLargeError(`request body is larger than the limit of ${limit} bytes`);
        }
      } else {
        n = Math.min(left, c.end - c.start);
        left -= n;
      }
      await writeAll(to.tcp, c.buf.subarray(c.start, c.start + n));
      c.start += n;
      if (scanner ? scanner.done : left === 0) return;
    }
    const more = await Promise.race([fill(c, MAX_HEAD), aborted]);
    if (!more) throw new WireError(400, "the request body ended early");
  }
}

/**
 * Copies a response body (after `inline` bytes already sent) as it came: by Content-Length,
 * chunked, or until the connection ends.
 */
export async function copyBody(from: Wire, to: Deno.TcpConn, res: ResponseHead, inline: number) {
  if (res.chunked) {
    const scanner = new ChunkedScanner();
    for (;;) {
      if (from.start < from.end) {
        const n = scanner.scan(from.buf, from.start, from.end);
        await writeAll(to, from.buf.subarray(from.start, from.start + n));
        from.start += n;
        if (scanner.done) return;
      }
      if (!(await fill(from, MAX_HEAD))) throw new WireError(502, "chunked body ended early");
    }
  } else if (res.contentLength >= 0) {
    let left = res.contentLength - inline;
    while (left > 0) {
      if (from.start === from.end && !(await fill(from, MAX_HEAD))) {
        throw new WireError(502, "body ended early");
      }
      const n = Math.min(left, from.end - from.start);
      await writeAll(to, from.buf.subarray(from.start, from.start + n));
      from.start += n;
      left -= n;
    }
  } else {
    for (;;) {
      if (from.start < from.end) {
        await writeAll(to, from.buf.subarray(from.start, from.end));
        from.start = from.end;
      }
      if (!(await fill(from, MAX_HEAD))) return;
    }
  }
}

const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");

/** `data` as one chunk of a chunked body. */
function chunk(data: Uint8Array): Uint8Array {
  const size = `${data.length.toString(16)}\r\n`;
  const out = new Uint8Array(size.length + data.length + 2);
  writeLatin1(size, out, 0);
  out.set(data, size.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}
