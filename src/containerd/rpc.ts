/**
 * The gRPC transport to containerd: our own gRPC-over-HTTP/2 client (h2.ts) on one connection
 * over the unix socket, namespace and lease headers on every call, deadlines, AbortSignal
 * cancellation, and error mapping through errors.ts. A broken connection fails the calls on it
 * with UNAVAILABLE; the next call connects again.
 */

import { type CallContext, fromGrpc, GrpcCode } from "./errors.ts";
import { type ByteStream, concat, Http2Connection, Http2Error } from "./h2.ts";
import type { MethodDefinition, ProtoApi } from "./proto.ts";

/** Per-call options. The containerd namespace is always explicit; there is no default. */
export interface CallOptions {
  namespace?: string;
  /** Content, snapshots and containers created under a lease survive GC until it ends. */
  lease?: string;
  signal?: AbortSignal;
  /** A deadline for this call. Leave unset for calls that block by design (Tasks.Wait). */
  timeoutMs?: number;
}

/** A bidirectional stream with replies read one at a time (used by Content.Write). */
export interface DuplexCall<Req, Res> {
  send(msg: Req): void;
  /** Resolves with the next reply, or `undefined` once the server has ended the stream. */
  next(): Promise<Res | undefined>;
  /** Half-closes our side. */
  end(): void;
  cancel(): void;
}

/** The narrow surface the service wrappers use; tests of wrappers may pass a fake. */
export interface Rpc {
  unary<Res>(service: string, method: string, req: object, opts?: CallOptions): Promise<Res>;
  serverStream<Res>(
    service: string,
    method: string,
    req: object,
    opts?: CallOptions,
  ): AsyncGenerator<Res>;
  duplex<Req extends object, Res>(
    service: string,
    method: string,
    opts?: CallOptions,
  ): DuplexCall<Req, Res>;
}

/** containerd's server accepts messages up to 16 MiB; match it. */
const MAX_MESSAGE = 16 * 1024 * 1024;

/** An error with a gRPC status, as fromGrpc() reads it. */
function grpcError(code: number, details: string): Error {
  return Object.assign(new Error(details), { code, details });
}

/** The real transport: gRPC over our HTTP/2 client on `<socket>`. */
export class GrpcRpc implements Rpc {
  readonly #api: ProtoApi;
  readonly #socket: string;
  #conn: Http2Connection | undefined;
  #connecting: Promise<Http2Connection> | undefined;
  #closed = false;

  constructor(socket: string, api: ProtoApi) {
    this.#socket = socket;
    this.#api = api;
  }

  /** The open connection, or a new one when there is none or it broke. */
  #connection(): Promise<Http2Connection> {
    if (this.#closed) return Promise.reject(grpcError(GrpcCode.CANCELLED, "the client was closed"));
    if (this.#conn?.usable) return Promise.resolve(this.#conn);
    this.#connecting ??= connectUnix(this.#socket).then(
      (io) => {
        this.#connecting = undefined;
        if (this.#closed) {
          io.close();
          throw grpcError(GrpcCode.CANCELLED, "the client was closed");
        }
        const conn = new Http2Connection(io);
        this.#conn = conn;
        return conn;
      },
      (err) => {
        this.#connecting = undefined;
        throw grpcError(GrpcCode.UNAVAILABLE, `connect: ${(err as Error).message}`);
      },
    );
    return this.#connecting;
  }

  /** Starts a call: its request headers go out at once; messages are sent with `send`. */
  async #start<Res>(service: string, method: string, opts: CallOptions): Promise<Call<Res>> {
    const def = this.#method(service, method);
    const ctx = this.#context(service, method, opts);
    if (opts.signal?.aborted) throw abortError(ctx, opts.signal);
    try {
      return new Call<Res>(await this.#connection(), def, ctx, opts);
    } catch (err) {
      // No connection, or it broke just now (Http2Error): UNAVAILABLE either way.
      throw fromGrpc(
        err instanceof Http2Error ? grpcError(GrpcCode.UNAVAILABLE, err.message) : err,
        ctx,
      );
    }
  }

  async unary<Res>(
    service: string,
    method: string,
    req: object,
    opts: CallOptions = {},
  ): Promise<Res> {
    for (let attempt = 0;; attempt++) {
      const call = await this.#start<Res>(service, method, opts);
      call.send(req, true);
      try {
        const reply = await call.next();
        await call.next(); // the status
        if (reply === undefined) {
          throw fromGrpc(grpcError(GrpcCode.INTERNAL, "no reply message"), call.ctx);
        }
        return reply;
      } catch (err) {
        // A call the server refused unseen (a GOAWAY raced it) goes once more, on a new
        // connection.
        if (attempt === 0 && call.refused) continue;
        throw err;
      }
    }
  }

  async *serverStream<Res>(
    service: string,
    method: string,
    req: object,
    opts: CallOptions = {},
  ): AsyncGenerator<Res> {
    for (let attempt = 0;; attempt++) {
      const call = await this.#start<Res>(service, method, opts);
      call.send(req, true);
      let yielded = false;
      try {
        for (;;) {
          const msg = await call.next();
          if (msg === undefined) return;
          yielded = true;
          yield msg;
        }
      } catch (err) {
        // A cancel we asked for is an orderly end, not a failure.
        if (opts.signal?.aborted) return;
        // As in unary(): refused unseen, sent once more.
        if (attempt === 0 && call.refused && !yielded) continue;
        throw err;
      } finally {
        call.cancel();
      }
    }
  }

  duplex<Req extends object, Res>(
    service: string,
    method: string,
    opts: CallOptions = {},
  ): DuplexCall<Req, Res> {
    const started = this.#start<Res>(service, method, opts);
    started.catch(() => {});
    // Sends before the connection is up wait for it, in order.
    let chain: Promise<Call<Res> | undefined> = started.catch(() => undefined);
    return {
      send: (msg) => {
        chain = chain.then((call) => (call?.send(msg, false), call));
      },
      next: async () => (await started).next(),
      end: () => {
        chain = chain.then((call) => (call?.end(), call));
      },
      cancel: () => {
        chain = chain.then((call) => (call?.cancel(), call));
      },
    };
  }

  /**
   * Closes the connection; calls on it fail with UNAVAILABLE, later ones with CANCELLED. (A
   * promise: the grpc-js transport before this one needed a pause after closing, because Deno's
   * node:http2 sometimes closed the socket's descriptor twice; see docs/architecture.md.)
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#conn?.close();
    this.#conn = undefined;
    return Promise.resolve();
  }

  #method(service: string, method: string): MethodDefinition {
    const def = this.#api.method(service, method);
    if (!def) throw new Error(`containerd API subset has no ${service}/${method}`);
    return def;
  }

  #context(service: string, method: string, opts: CallOptions): CallContext {
    const short = service.slice(service.lastIndexOf(".") + 1);
    return { action: `${short}.${method}`, socket: this.#socket, namespace: opts.namespace };
  }
}

/**
 * One gRPC call on an HTTP/2 stream: length-prefixed messages both ways, the status from the
 * trailers (or from a trailers-only answer), a deadline, cancellation.
 */
class Call<Res> {
  readonly ctx: CallContext;
  /** The server never processed the call (see Http2Error.refused): it may be sent again. */
  refused = false;
  readonly #conn: Http2Connection;
  readonly #def: MethodDefinition;
  readonly #id: number;
  readonly #replies: Res[] = [];
  readonly #waiters: Array<{ resolve(r: Res | undefined): void; reject(e: Error): void }> = [];
  /** Set when the call is over: undefined error means OK. */
  #done: { error?: Error } | undefined;
  #pending = new Uint8Array(0);
  #gotHeaders = false;
  #sending: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.#finish(abortError(this.ctx, this.#signal!), true);

  constructor(conn: Http2Connection, def: MethodDefinition, ctx: CallContext, opts: CallOptions) {
    this.#conn = conn;
    this.#def = def;
    this.ctx = ctx;
    this.#signal = opts.signal;
    const headers: Array<[string, string]> = [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", def.path],
      [":authority", "localhost"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
    ];
    if (opts.namespace) headers.push(["containerd-namespace", opts.namespace]);
    if (opts.lease) headers.push(["containerd-lease", opts.lease]);
    if (opts.timeoutMs) {
      // At most 8 digits: milliseconds up to a day, whole seconds beyond.
      const ms = Math.max(1, Math.ceil(opts.timeoutMs));
      headers.push(["grpc-timeout", ms < 1e8 ? `${ms}m` : `${Math.ceil(ms / 1000)}S`]);
    }
    this.#id = conn.open(headers, {
      headers: (h, end) => this.#headers(h, end),
      data: (chunk, end) => this.#data(chunk, end),
      error: (err) => {
        this.refused = err instanceof Http2Error && err.refused;
        this.#finish(grpcError(GrpcCode.UNAVAILABLE, err.message), false);
      },
    });
    // Armed once the stream is open (opening throws on a broken connection).
    if (opts.timeoutMs) {
      this.#timer = setTimeout(
        () => this.#finish(grpcError(GrpcCode.DEADLINE_EXCEEDED, "deadline exceeded"), true),
        opts.timeoutMs,
      );
    }
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Sends one message; `last` half-closes our side after it. */
  send(msg: object, last: boolean): void {
    let bytes: Uint8Array;
    try {
      bytes = this.#def.requestSerialize(msg);
    } catch (err) {
      this.#finish(grpcError(GrpcCode.INTERNAL, `cannot encode the request: ${err}`), true);
      return;
    }
    const framed = new Uint8Array(5 + bytes.length);
    new DataView(framed.buffer).setUint32(1, bytes.length);
    framed.set(bytes, 5);
    this.#queue(framed, last);
  }

  /** Half-closes our side. */
  end(): void {
    this.#queue(new Uint8Array(0), true);
  }

  #queue(bytes: Uint8Array, last: boolean): void {
    this.#sending = this.#sending
      .then(() => this.#done ? undefined : this.#conn.sendData(this.#id, bytes, last))
      .catch((err) => this.#finish(grpcError(GrpcCode.UNAVAILABLE, String(err)), true));
  }

  /** The next reply, or undefined once the call ended with OK; rejects with its error. */
  next(): Promise<Res | undefined> {
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#settle();
    });
  }

  cancel(): void {
    this.#finish(grpcError(GrpcCode.CANCELLED, "cancelled"), true);
  }

  #headers(headers: Array<[string, string]>, end: boolean): void {
    const get = (name: string) => headers.find(([n]) => n === name)?.[1];
    if (!this.#gotHeaders) {
      this.#gotHeaders = true;
      const status = get(":status");
      if (status !== "200") {
        this.#finish(grpcError(httpToGrpc(Number(status)), `HTTP status ${status}`), !end);
        return;
      }
    }
    const code = get("grpc-status");
    if (code !== undefined) {
      const details = decodeGrpcMessage(get("grpc-message") ?? "");
      if (this.#pending.length > 0 && Number(code) === GrpcCode.OK) {
        this.#finish(grpcError(GrpcCode.INTERNAL, "the stream ended inside a message"), !end);
      } else {
        this.#finish(
          Number(code) === GrpcCode.OK ? undefined : grpcError(Number(code), details),
          !end,
        );
      }
    } else if (end) {
      this.#finish(grpcError(GrpcCode.INTERNAL, "the stream ended without a gRPC status"), false);
    }
  }

  #data(chunk: Uint8Array, end: boolean): void {
    if (this.#done) return;
    let buf = this.#pending.length ? concat([this.#pending, chunk]) : chunk;
    while (buf.length >= 5) {
      if (buf[0] !== 0) {
        this.#finish(grpcError(GrpcCode.INTERNAL, "a compressed message (not asked for)"), true);
        return;
      }
      const len = new DataView(buf.buffer, buf.byteOffset).getUint32(1);
      if (len > MAX_MESSAGE) {
        this.#finish(
          grpcError(GrpcCode.RESOURCE_EXHAUSTED, `a reply of ${len} bytes (limit ${MAX_MESSAGE})`),
          true,
        );
        return;
      }
      if (buf.length < 5 + len) break;
      const bytes = buf.subarray(5, 5 + len);
      try {
        this.#replies.push(this.#def.responseDeserialize(bytes) as Res);
      } catch (err) {
        this.#finish(grpcError(GrpcCode.INTERNAL, `cannot decode the reply: ${err}`), true);
        return;
      }
      buf = buf.subarray(5 + len);
    }
    this.#pending = buf.length ? buf.slice() : new Uint8Array(0);
    if (end) this.#finish(grpcError(GrpcCode.INTERNAL, "the stream ended without trailers"), false);
    this.#settle();
  }

  /** Ends the call (once); `reset` tells the server when the stream is still open. */
  #finish(error: Error | undefined, reset: boolean): void {
    if (this.#done) return;
    this.#done = { error };
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener("abort", this.#onAbort);
    if (reset) this.#conn.reset(this.#id);
    this.#settle();
  }

  #settle(): void {
    while (this.#waiters.length > 0) {
      if (this.#replies.length > 0) {
        this.#waiters.shift()!.resolve(this.#replies.shift());
      } else if (this.#done) {
        const w = this.#waiters.shift()!;
        if (this.#done.error) w.reject(fromGrpc(this.#done.error, this.ctx));
        else w.resolve(undefined);
      } else {
        return;
      }
    }
  }
}

/** gRPC's mapping of an HTTP status that is not 200 (its HTTP/2 protocol document). */
function httpToGrpc(status: number): number {
  switch (status) {
    case 400:
      return GrpcCode.INTERNAL;
    case 401:
      return GrpcCode.UNAUTHENTICATED;
    case 403:
      return GrpcCode.PERMISSION_DENIED;
    case 404:
      return GrpcCode.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcCode.UNAVAILABLE;
    default:
      return GrpcCode.UNKNOWN;
  }
}

/** grpc-message is percent-encoded UTF-8; a malformed escape is kept as it is. */
function decodeGrpcMessage(value: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function abortError(ctx: CallContext, signal: AbortSignal): Error {
  return fromGrpc(
    grpcError(GrpcCode.CANCELLED, String(signal.reason ?? "aborted")),
    ctx,
  );
}

/** Opens containerd's unix socket: Deno's own socket, or Node.js's under Node.js (armhf). */
async function connectUnix(path: string): Promise<ByteStream> {
  if ("Deno" in globalThis) {
    const conn = await Deno.connect({ transport: "unix", path });
    return {
      read: (buf) => conn.read(buf),
      write: async (data) => {
        for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
      },
      close: () => {
        try {
          conn.close();
        } catch { /* already closed */ }
      },
      setRef: (ref) => ref ? conn.ref() : conn.unref(),
    };
  }
  const net = await import("node:net");
  const socket = net.connect({ path });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const chunks: Uint8Array[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  socket.on("data", (c: Uint8Array) => {
    chunks.push(c);
    wake?.();
  });
  socket.on("end", () => {
    ended = true;
    wake?.();
  });
  socket.on("error", (err) => {
    failure = err;
    wake?.();
  });
  socket.on("close", () => {
    ended = true;
    wake?.();
  });
  return {
    read: async (buf) => {
      while (chunks.length === 0) {
        if (failure) throw failure;
        if (ended) return null;
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
      }
      const c = chunks[0];
      const n = Math.min(c.length, buf.length);
      buf.set(c.subarray(0, n));
      if (n < c.length) chunks[0] = c.subarray(n);
      else chunks.shift();
      return n;
    },
    write: (data) =>
      new Promise<void>((resolve, reject) =>
        socket.write(data, (err) => err ? reject(err) : resolve())
      ),
    close: () => socket.destroy(),
    setRef: (ref) => ref ? socket.ref() : socket.unref(),
  };
}
