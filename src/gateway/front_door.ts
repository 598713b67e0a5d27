/**
 * The gateway's front door: our own HTTP/1.1 server on the gateway port (Deno only). Function
 * calls (`/function/NAME[.NS][/…]` over HTTP/1.1) are forwarded byte for byte to a replica over
 * a pooled kept-alive connection, with the call headers the proxy (src/provider/proxy.ts) adds
 * and removes, the body limit, the upstream timeout, scale from zero and the invocation metrics.
 * A Request and a Response per call cost about 0.1 ms, as much as the rest of the proxy together:
 * this path makes neither. Every other request (the API, the UI, /metrics, async calls, HTTP/1.0,
 * upgrades, unusual paths) goes to the ordinary router, which answers it exactly as before:
 * forwarded as it came to Deno.serve on a private loopback port (one request at a time, or the
 * whole connection for HTTP/1.0, upgrades and Expect), or in-process for a small async call.
 * The call itself is in function_call.ts.
 */

import type { ServeOptions, Server } from "../platform/http.ts";
import { type FunctionTarget, parseFunctionPath } from "../provider/function_path.ts";
import { Deadlines } from "../provider/proxy.ts";
import { errorResponse } from "./errors.ts";
import {
  BODY_REUSE_MS,
  type CallContext,
  type CallDeps,
  ClientGoneError,
  copyBody,
  FunctionCall,
  MAX_HEAD,
  readHead,
  StaleConnection,
  streamBody,
} from "./function_call.ts";
import {
  bodyless,
  decodeLatin1,
  findHeadEnd,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
  textResponse,
  WireError,
} from "../http1/wire.ts";
import {
  closeQuietly,
  fill,
  HeadTooLarge,
  UpstreamPool,
  type Wire,
  wire,
  writeAll,
} from "../http1/pool.ts";

export { MAX_HEAD } from "./function_call.ts";

/** What the front door needs; passed in so tests can use fakes. */
export interface FrontDoorDeps extends CallDeps {
  /** Counts a call as started; the callback counts it with its status (invocation metrics). */
  begin(name: string, namespace: string): (status: number) => void;
  /** How long a request head may take from its first byte (default HEAD_TIMEOUT_MS). */
  headTimeoutMs?: number;
  /** Everything that is not a function call: the gateway's router. */
  fallback: (req: Request) => Response | Promise<Response>;
}

/** A request head must have arrived whole this long after its first byte, or its connection closes. */
export const HEAD_TIMEOUT_MS = 30_000;
/** Headers of an in-process answer the front door sets itself. */
const IN_PROCESS_DROP = new Set([
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
]);
/** The pool key of connections to the router behind the front door. */
const ROUTER = "router";
// Request targets served here; anything else goes to the router, whose URL parsing would change
// it (dot segments, characters it percent-encodes, backslashes).
const PLAIN_TARGET =
  /^\/function\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*(\?[A-Za-z0-9\-._~!$&()*+,;=:@/?%]*)?$/;
const DOT_SEGMENT = /\/\.\.?(\/|\?|$)|%2e/i;

/**
 * Starts the front door on `opts.port` and the router behind it on a loopback port; resolves
 * when both listen. `signal` stops both: the listener closes, idle connections close, and calls
 * in progress finish first.
 */
export async function serveFrontDoor(deps: FrontDoorDeps, opts: ServeOptions): Promise<Server> {
  if (opts.signal?.aborted) return { port: opts.port, finished: Promise.resolve() };
  const stopInner = new AbortController();
  const inner = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: stopInner.signal,
    onListen: () => {},
  }, (req) => deps.fallback(req));
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: opts.hostname ?? "0.0.0.0", port: opts.port });
  } catch (err) {
    stopInner.abort();
    await inner.finished;
    throw err;
  }
  const door = new FrontDoor(deps, inner.addr.port);
  const accepting = (async () => {
    for (;;) {
      let tcp: Deno.TcpConn;
      try {
        tcp = await listener.accept();
      } catch (err) {
        if (opts.signal?.aborted || err instanceof Deno.errors.BadResource) return; // closed
        // One connection that was reset before it was accepted: the next one, at once.
        if (
          err instanceof Deno.errors.NotConnected || err instanceof Deno.errors.ConnectionReset ||
          err instanceof Deno.errors.ConnectionAborted
        ) {
          continue;
        }
        // Out of file descriptors, say: the listener stays, and tries again shortly.
        deps.log.warn("front door: accept failed", { err: String(err) });
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      door.open(tcp);
    }
  })();
  const finished = (async () => {
    await new Promise<void>((resolve) => {
      opts.signal?.addEventListener("abort", () => resolve(), { once: true });
    });
    listener.close();
    await accepting;
    // Together: connections handed over end when the router behind closes them.
    stopInner.abort();
    await Promise.all([door.stop(), inner.finished]);
  })();
  return { port: (listener.addr as Deno.NetAddr).port, finished };
}

/** The connections of one front door. */
export class FrontDoor {
  readonly #deps: FrontDoorDeps;
  readonly #innerPort: number;
  readonly #pool = new UpstreamPool();
  readonly #deadlines = new Deadlines();
  /** What a function call shares with the front door. */
  readonly #ctx: CallContext;
  /**
   * Connections waiting for (the rest of) a request head, and since when: closed at once on
   * stop, and after HEAD_TIMEOUT_MS when part of a head has come (a slow client).
   */
  readonly #idle = new Map<Deno.TcpConn, { since: number; partial: boolean }>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  readonly #sessions = new Set<Promise<void>>();
  /** The router's side of connections handed over whole. */
  readonly #handedOver = new Set<Deno.TcpConn>();
  #stopping = false;

  /** `innerPort`: the loopback port of the router that answers everything else. */
  constructor(deps: FrontDoorDeps, innerPort: number) {
    this.#deps = deps;
    this.#innerPort = innerPort;
    this.#ctx = { deps, pool: this.#pool, deadlines: this.#deadlines };
    const timeout = deps.headTimeoutMs ?? HEAD_TIMEOUT_MS;
    this.#sweeper = setInterval(() => this.#closeSlowHeads(timeout), Math.min(1000, timeout / 4));
    Deno.unrefTimer(this.#sweeper);
  }

  #closeSlowHeads(timeoutMs: number): void {
    const now = performance.now();
    for (const [tcp, { since, partial }] of this.#idle) {
      if (partial && now - since > timeoutMs) closeQuietly(tcp);
    }
  }

  /** Serves one accepted connection until it closes. */
  open(tcp: Deno.TcpConn): void {
    const s = this.#session(wire(tcp)).catch((err) => {
      this.#deps.log.warn("front door connection failed", { err: String(err) });
    }).finally(() => {
      this.#idle.delete(tcp);
      closeQuietly(tcp);
      this.#sessions.delete(s);
    });
    this.#sessions.add(s);
  }

  /** Closes idle connections and waits for the others to finish their call. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#sweeper);
    for (const tcp of this.#idle.keys()) closeQuietly(tcp);
    // Connections handed to the router whole (upgrades) would otherwise hold the stop forever.
    for (const tcp of this.#handedOver) closeQuietly(tcp);
    while (this.#sessions.size > 0) await Promise.all([...this.#sessions]);
    this.#pool.close();
  }

  async #session(c: Wire): Promise<void> {
    for (;;) {
      // The next request head; empty lines before it are ignored (RFC 9112 §2.2: some clients
      // send CRLF after a body).
      skipEmptyLines(c);
      let at = findHeadEnd(c.buf, c.start, c.end);
      while (!at) {
        // Bytes after c.start already searched (fill may move them to the front).
        const searched = Math.max(0, c.end - c.start - 2);
        if (this.#stopping) return;
        // Timed from the head's first byte: a head trickling in byte by byte ends in time too.
        const waiting = this.#idle.get(c.tcp);
        if (c.start === c.end || !waiting) {
          this.#idle.set(c.tcp, { since: performance.now(), partial: c.start < c.end });
        } else if (!waiting.partial) {
          waiting.partial = true;
          waiting.since = performance.now();
        }
        let more: boolean;
        try {
          more = await fill(c, MAX_HEAD);
        } catch (err) {
          if (err instanceof HeadTooLarge) {
            await this.#answer(c, 431, `the request head is larger than ${MAX_HEAD} bytes`, true);
          }
          return; // HeadTooLarge answered, or the connection failed
        }
        if (!more) return; // the client closed (a partial head is dropped)
        const before = c.start;
        skipEmptyLines(c);
        at = findHeadEnd(
          c.buf,
          c.start,
          c.end,
          c.start + Math.max(0, searched - (c.start - before)),
        );
      }
      this.#idle.delete(c.tcp);
      let head: RequestHead;
      try {
        head = parseRequestHead(decodeLatin1(c.buf.subarray(c.start, at.end)));
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        await this.#answer(c, err.status, err.message, true);
        return;
      }
      const target = head.minor === 1 && !head.upgrade && !head.otherEncoding &&
          PLAIN_TARGET.test(head.target) && !DOT_SEGMENT.test(head.target)
        ? parseFunctionPath("function", head.target.split("?", 1)[0])
        : undefined;
      if (!target) {
        if (head.minor === 1 && !head.upgrade && !head.otherEncoding && !head.expect) {
          // One request for the router; the connection stays ours (function calls that follow
          // on it take the fast path). An async call whose body is all here is handed to the
          // router in-process (no loopback hop: async accept is CPU-bound).
          const direct = head.method === "POST" && !head.chunked &&
            head.target.startsWith("/async-function/") &&
            c.end - at.body >= Math.max(0, head.contentLength);
          const keep = direct
            ? await this.#inProcess(c, head, at.body)
            : await this.#viaRouter(c, head, at.body);
          if (!keep || this.#stopping) return;
          continue;
        }
        // HTTP/1.0, upgrades, Expect: handed over with the rest of the connection.
        await this.#handOver(c);
        return;
      }
      const headStart = c.start;
      c.start = at.body;
      const q = head.target.indexOf("?");
      const pathAndQuery = q < 0 ? target.path : target.path + head.target.slice(q);
      const keep = await this.#call(c, head, headStart, target, pathAndQuery);
      if (!keep || this.#stopping) return;
    }
  }

  /** Answers with a plain-text error; false when that failed. */
  async #answer(c: Wire, status: number, message: string, close: boolean): Promise<boolean> {
    try {
      await writeAll(c.tcp, textResponse(status, message + "\n", close));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Answers one request whose body is all in the buffer by calling the router in-process, its
   * answer read whole (async calls answer 202 or an error, a few bytes); falls back to
   * forwarding when the request cannot be made into a `Request`.
   */
  async #inProcess(c: Wire, head: RequestHead, bodyStart: number): Promise<boolean> {
    const length = Math.max(0, head.contentLength);
    let req: Request;
    try {
      const headers = new Headers();
      for (const h of head.headers) headers.append(h.name, h.value);
      req = new Request(`http://${head.host || "localhost"}${head.target}`, {
        method: head.method,
        headers,
        body: length > 0 ? c.buf.slice(bodyStart, bodyStart + length) : undefined,
      });
    } catch {
      return await this.#viaRouter(c, head, bodyStart);
    }
    c.start = bodyStart + length;
    let status = 500;
    let statusText = "";
    let out: [string, string][] = [["content-type", "text/plain"]];
    let body: Uint8Array = new TextEncoder().encode("internal error, see the faasd log\n");
    try {
      const res = await this.#deps.fallback(req);
      body = new Uint8Array(await res.arrayBuffer());
      status = res.status;
      statusText = res.statusText;
      out = [...res.headers].filter(([k]) => !IN_PROCESS_DROP.has(k));
    } catch (err) {
      this.#deps.log.error("request failed", { err });
    }
    let text = `HTTP/1.1 ${status} ${statusText}\r\n`;
    for (const [k, v] of out) text += `${k}: ${v}\r\n`;
    const noBody = bodyless(head.method, status);
    if (!noBody) text += `content-length: ${body.length}\r\n`;
    if (head.close) text += "connection: close\r\n";
    text += "\r\n";
    const bytes = new TextEncoder().encode(text);
    const all = new Uint8Array(bytes.length + (noBody ? 0 : body.length));
    all.set(bytes);
    if (!noBody) all.set(body, bytes.length);
    try {
      await writeAll(c.tcp, all);
    } catch {
      return false;
    }
    return !head.close;
  }

  /**
   * Forwards one request as it came (head and body) to the router behind the front door over a
   * pooled connection, and its answer back as it came; whether the client's connection can carry
   * another request.
   */
  async #viaRouter(c: Wire, head: RequestHead, bodyStart: number): Promise<boolean> {
    const headBytes = c.buf.slice(c.start, bodyStart);
    c.start = bodyStart;
    let uploaded = !head.chunked && head.contentLength <= 0;
    let first: Uint8Array = headBytes;
    let left = head.contentLength;
    if (!uploaded && !head.chunked) {
      const sent = Math.min(left, c.end - c.start);
      first = new Uint8Array(headBytes.length + sent);
      first.set(headBytes);
      first.set(c.buf.subarray(c.start, c.start + sent), headBytes.length);
      c.start += sent;
      left -= sent;
      uploaded = left === 0;
    }
    for (let attempt = 0;; attempt++) {
      const pooled = attempt === 0
        ? this.#pool.take(ROUTER, uploaded ? undefined : BODY_REUSE_MS)
        : undefined;
      let inner: Wire;
      try {
        inner = pooled ??
          wire(await Deno.connect({ hostname: "127.0.0.1", port: this.#innerPort }));
      } catch (err) {
        await this.#answer(c, 503, `the gateway is stopping: ${(err as Error).message}`, true);
        return false;
      }
      let uploadError: unknown;
      let upload: Promise<void> | undefined;
      let stop: (err: Error) => void = () => {};
      let answered = false;
      try {
        await writeAll(inner.tcp, first);
        if (!uploaded) {
          const aborted = new Promise<never>((_, reject) => stop = reject);
          aborted.catch(() => {});
          upload = streamBody(c, inner, head.chunked, left, Infinity, aborted).then(
            () => void (uploaded = true),
            (err) => {
              uploadError = err;
              closeQuietly(inner.tcp);
            },
          );
        }
        let res: ResponseHead;
        let at: { end: number; body: number };
        for (;;) {
          const found = await readHead(inner);
          if (!found) {
            await upload;
            if (uploadError !== undefined) throw uploadError;
            throw new StaleConnection();
          }
          at = found;
          res = parseResponseHead(decodeLatin1(inner.buf.subarray(inner.start, at.end)));
          if (res.status >= 200) break;
          inner.start = at.body; // an interim answer the client did not ask for
        }
        // The head as it came, with the body when it is all here already: one write.
        const noBody = bodyless(head.method, res.status);
        const inline = noBody || res.contentLength < 0
          ? 0
          : Math.min(res.contentLength, inner.end - at.body);
        answered = true;
        await writeAll(c.tcp, inner.buf.subarray(inner.start, at.body + inline));
        inner.start = at.body + inline;
        if (!noBody) await copyBody(inner, c.tcp, res, inline);
        const reuse = !res.close && uploaded;
        if (reuse) this.#pool.give(ROUTER, inner);
        else closeQuietly(inner.tcp);
        return reuse && !head.close;
      } catch (err) {
        closeQuietly(inner.tcp);
        if (
          err instanceof StaleConnection && pooled && attempt === 0 && uploadError === undefined &&
          !upload
        ) {
          this.#pool.drop(ROUTER);
          continue;
        }
        if (answered) return false; // the answer broke off: only closing can say so
        if (uploadError instanceof WireError) {
          // The client's body was malformed or too large (the upload closed the router's side).
          await this.#answer(c, uploadError.status, uploadError.message, true);
        } else {
          await this.#answer(c, 502, "the gateway's router broke the connection", true);
        }
        return false;
      } finally {
        stop(new Error("done"));
      }
    }
  }

  /** Pipes the connection, from the current head on, to the router behind the front door. */
  async #handOver(c: Wire): Promise<void> {
    let inner: Deno.TcpConn;
    try {
      inner = await Deno.connect({ hostname: "127.0.0.1", port: this.#innerPort });
    } catch (err) {
      await this.#answer(c, 503, `the gateway is stopping: ${(err as Error).message}`, true);
      return;
    }
    inner.setNoDelay(true);
    try {
      // The pipe reads the connection itself: a read started ahead ends first (none is expected
      // here: one starts only while a call waits with nothing more from the client buffered).
      if (c.pending && !(await c.pending.catch(() => false))) return;
      if (!(await writeAll(inner, c.buf.subarray(c.start, c.end)).then(() => true, () => false))) {
        return;
      }
      c.start = c.end = 0;
      this.#handedOver.add(inner);
      const up = pipe(c.tcp, inner, c.buf);
      // Once the router has said all it will (HTTP/1.0, a finished upgrade), the connection is
      // done, whether or not the client closes its side: as Deno.serve itself would.
      await pipe(inner, c.tcp, new Uint8Array(16384));
      closeQuietly(c.tcp);
      closeQuietly(inner);
      await up;
    } finally {
      this.#handedOver.delete(inner);
      closeQuietly(inner);
    }
  }

  /**
   * One function call; the head is read and `c.start` is at its body. Resolves with whether the
   * connection can carry another request.
   */
  async #call(
    c: Wire,
    head: RequestHead,
    headStart: number,
    target: FunctionTarget,
    pathAndQuery: string,
  ): Promise<boolean> {
    const hasBody = head.chunked || head.contentLength > 0;
    if (head.expect && head.expect !== "100-continue") {
      await this.#answer(c, 417, `unsupported expectation "${head.expect}"`, hasBody);
      return !hasBody;
    }
    if (head.contentLength > this.#deps.maxBodyBytes) {
      const msg = `request body is larger than the limit of ${this.#deps.maxBodyBytes} bytes`;
      await this.#answer(c, 413, msg, true);
      return false;
    }
    const started = performance.now();
    const end = this.#deps.begin(target.name, target.namespace);
    const x = new FunctionCall(this.#ctx, c, head, headStart, target, started);
    let status = 0;
    try {
      const res = await x.run(pathAndQuery, hasBody);
      status = res.status;
      end(status);
      return await x.respond(res);
    } catch (err) {
      if (status !== 0) {
        // The response head went out; what failed was its body. Nothing more can be said.
        return false;
      }
      if (err instanceof ClientGoneError) {
        // Counted as nginx logs it: 499, the client closed the request.
        end(499);
        this.#deps.log.debug("call abandoned", { function: target.name, reason: err.message });
        return false;
      }
      const failure = x.failure(err);
      const answer = errorResponse(failure, this.#deps.log);
      end(answer.status);
      const close = hasBody && !x.uploaded;
      return await this.#answer(c, answer.status, (await answer.text()).trimEnd(), close) &&
        !close;
    } finally {
      x.finish();
    }
  }
}

/** Skips the empty lines a client may send before a request line. */
function skipEmptyLines(c: Wire): void {
  while (c.start < c.end && (c.buf[c.start] === 13 || c.buf[c.start] === 10)) c.start++;
}

/** Copies `from` to `to` until `from` ends, then ends `to`'s writing side. */
async function pipe(from: Deno.TcpConn, to: Deno.TcpConn, buf: Uint8Array): Promise<void> {
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      await writeAll(to, buf.subarray(0, n));
    }
    await to.closeWrite().catch(() => {});
  } catch {
    closeQuietly(from);
    closeQuietly(to);
  }
}
