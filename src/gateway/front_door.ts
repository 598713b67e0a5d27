/**
 * The gateway's front door: our own HTTP/1.1 server on the gateway port (Deno only). Function
 * calls (`/function/NAME[.NS][/…]` over HTTP/1.1) are forwarded byte for byte to a replica over
 * a pooled kept-alive connection, with the call headers the proxy (src/provider/proxy.ts) adds
 * and removes, the body limit, the upstream timeout, scale from zero and the invocation metrics.
 * A Request and a Response per call cost about 0.1 ms, as much as the rest of the proxy together:
 * this path makes neither. Every other request (the API, the UI, /metrics, async calls, HTTP/1.0,
 * upgrades, unusual paths) is handed, with the rest of its connection, to the ordinary Deno.serve
 * router on a private loopback port, which answers it exactly as before.
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
import type { ServeOptions, Server } from "../platform/http.ts";
import { type FunctionTarget, parseFunctionPath } from "../provider/function_path.ts";
import type { Route } from "../provider/manager.ts";
import { Deadlines, type Router } from "../provider/proxy.ts";
import { errorResponse } from "./errors.ts";
import {
  bodyless,
  ChunkedScanner,
  CONTINUE,
  decodeLatin1,
  findHeadEnd,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
  textResponse,
  WireError,
  writeLatin1,
} from "./http1_wire.ts";
import {
  closeQuietly,
  fill,
  HeadTooLarge,
  UpstreamPool,
  type Wire,
  wire,
  writeAll,
} from "./upstream_pool.ts";

/** What the front door needs; passed in so tests can use fakes. */
export interface FrontDoorDeps {
  /** Picks a ready replica (and may scale from zero): the provider's function manager. */
  router: Router;
  /** How long a call waits for a ready replica. */
  readyTimeoutMs: number;
  /** How long a function may take to send its response headers (unless it sets its own). */
  upstreamTimeoutMs: number;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Counts a call as started; the callback counts it with its status (invocation metrics). */
  begin(name: string, namespace: string): (status: number) => void;
  /** How long a request head may take from its first byte (default HEAD_TIMEOUT_MS). */
  headTimeoutMs?: number;
  /** Everything that is not a function call: the gateway's router. */
  fallback: (req: Request) => Response | Promise<Response>;
  log: Logger;
}

/** Largest request or response head, in bytes (431 for a request, 502 for a response). */
export const MAX_HEAD = 64 * 1024;
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
/** A pooled connection idle longer than this is not used for a request with a body. */
const BODY_REUSE_MS = 1000;

// Hop-by-hop headers (RFC 9110 §7.6.1), and the call headers the gateway sets itself.
const DROP_REQUEST = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
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
  /**
   * Connections waiting for (the rest of) a request head, and since when: closed at once on
   * stop, and after HEAD_TIMEOUT_MS when part of a head has come (a slow client).
   */
  readonly #idle = new Map<Deno.TcpConn, { since: number; partial: boolean }>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  readonly #sessions = new Set<Promise<void>>();
  #stopping = false;

  /** `innerPort`: the loopback port of the router that answers everything else. */
  constructor(deps: FrontDoorDeps, innerPort: number) {
    this.#deps = deps;
    this.#innerPort = innerPort;
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
    while (this.#sessions.size > 0) await Promise.all([...this.#sessions]);
    this.#pool.close();
  }

  async #session(c: Wire): Promise<void> {
    for (;;) {
      // The next request head.
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
        at = findHeadEnd(c.buf, c.start, c.end, c.start + searched);
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
      const pooled = this.#pool.take(ROUTER, uploaded ? undefined : BODY_REUSE_MS);
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
          continue;
        }
        if (answered) return false; // the answer broke off: only closing can say so
        if (err instanceof WireError && uploadError === err) {
          await this.#answer(c, err.status, err.message, true);
        } else if (err instanceof StaleConnection || err instanceof WireError) {
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
      if (!(await writeAll(inner, c.buf.subarray(c.start, c.end)).then(() => true, () => false))) {
        return;
      }
      c.start = c.end = 0;
      await Promise.all([pipe(c.tcp, inner, c.buf), pipe(inner, c.tcp, new Uint8Array(16384))]);
    } finally {
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
    const x = new Exchange(this, c, head, headStart, target, started);
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

  /** @internal for Exchange */
  get internals() {
    return { deps: this.#deps, pool: this.#pool, deadlines: this.#deadlines };
  }
}

/** The response head of a replica and where it came from. */
interface Upstream {
  status: number;
  head: ResponseHead;
  text: string;
  up: Wire;
  key: string;
}

/** One call through the front door: route, forward, answer. */
class Exchange {
  readonly #door: FrontDoor;
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
    door: FrontDoor,
    c: Wire,
    head: RequestHead,
    headStart: number,
    target: FunctionTarget,
    started: number,
  ) {
    this.#door = door;
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
    const { deps, pool, deadlines } = this.#door.internals;
    const head = this.#head;
    let callId = "";
    for (const h of head.headers) if (h.name === "x-call-id" && h.value) callId = h.value;
    this.#callId = callId || randomUUID();
    this.#startNs = `${BigInt(Date.now()) * 1_000_000n}`;
    try {
      this.#route = await deps.router.route(this.#name, this.#namespace, {
        timeoutMs: deps.readyTimeoutMs,
      });
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      throw new UnavailableError(
        `function ${this.#fn} is not available: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const route = this.#route;
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
    const c = this.#c;
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
      const pooled = pool.take(key, hasBody ? BODY_REUSE_MS : undefined);
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
          const limit = this.#door.internals.deps.maxBodyBytes;
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
    for (const h of head.headers) {
      if (DROP_REQUEST.has(h.name)) continue;
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
    for (const h of head.headers) {
      if (DROP_RESPONSE.has(h.name)) continue;
      if (noBody && h.name === "transfer-encoding") continue;
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
      this.#door.internals.pool.give(key, up);
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
    if (this.#deadline) this.#door.internals.deadlines.delete(this.#deadline);
    this.#route?.release();
    this.#route = undefined;
    if (this.#up) closeQuietly(this.#up.tcp);
    this.#abort?.(new Error("finished"));
  }
}

/** A pooled connection ended before the first byte of its response. */
class StaleConnection extends Error {
  override name = "StaleConnection";
}

/** Reads until a response head is complete; undefined when the connection ends before. */
async function readHead(w: Wire): Promise<{ end: number; body: number } | undefined> {
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
async function streamBody(
  c: Wire,
  to: Wire,
  chunked: boolean,
  left: number,
  limit: number,
  aborted: Promise<never>,
): Promise<void> {
  const scanner = chunked ? new ChunkedScanner() : undefined;
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
async function copyBody(from: Wire, to: Deno.TcpConn, res: ResponseHead, inline: number) {
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
