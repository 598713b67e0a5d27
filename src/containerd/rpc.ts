/**
 * The gRPC transport to containerd: one channel over the unix socket, namespace and lease headers
 * on every call, AbortSignal cancellation, and error mapping through errors.ts.
 */

import * as grpc from "@grpc/grpc-js";
import { type CallContext, fromGrpc } from "./errors.ts";
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

/** How long {@link GrpcRpc.close} waits after closing (see there). */
const CLOSE_SETTLE_MS = 20;

/** The real transport: @grpc/grpc-js on `unix://<socket>`. */
export class GrpcRpc implements Rpc {
  readonly #client: grpc.Client;
  readonly #api: ProtoApi;
  readonly #socket: string;

  constructor(socket: string, api: ProtoApi) {
    this.#socket = socket;
    this.#api = api;
    this.#client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": MAX_MESSAGE,
      "grpc.max_send_message_length": MAX_MESSAGE,
    });
  }

  unary<Res>(service: string, method: string, req: object, opts: CallOptions = {}): Promise<Res> {
    const def = this.#method(service, method);
    const ctx = this.#context(service, method, opts);
    return new Promise<Res>((resolve, reject) => {
      if (opts.signal?.aborted) return reject(abortError(ctx, opts.signal));
      const call = this.#client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize as (b: Buffer) => Res,
        req,
        metadata(opts),
        callOptions(opts),
        (err, res) => {
          opts.signal?.removeEventListener("abort", onAbort);
          if (err) reject(fromGrpc(err, ctx));
          else resolve(res as Res);
        },
      );
      const onAbort = () => call.cancel();
      opts.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  async *serverStream<Res>(
    service: string,
    method: string,
    req: object,
    opts: CallOptions = {},
  ): AsyncGenerator<Res> {
    const def = this.#method(service, method);
    const ctx = this.#context(service, method, opts);
    if (opts.signal?.aborted) throw abortError(ctx, opts.signal);
    const call = this.#client.makeServerStreamRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize as (b: Buffer) => Res,
      req,
      metadata(opts),
      callOptions(opts),
    );
    const onAbort = () => call.cancel();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const msg of call) yield msg as Res;
    } catch (err) {
      // A cancel we asked for is an orderly end, not a failure.
      if (opts.signal?.aborted) return;
      throw fromGrpc(err, ctx);
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      call.cancel();
    }
  }

  duplex<Req extends object, Res>(
    service: string,
    method: string,
    opts: CallOptions = {},
  ): DuplexCall<Req, Res> {
    const def = this.#method(service, method);
    const ctx = this.#context(service, method, opts);
    const call = this.#client.makeBidiStreamRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize as (b: Buffer) => Res,
      metadata(opts),
      callOptions(opts),
    );
    return replyQueue<Req, Res>(call, ctx, opts.signal);
  }

  /**
   * Closes the channel, and resolves a moment later. Under Deno 2.9.5, node:http2 sometimes
   * closes the socket's file descriptor a second time shortly after a close of ours (4 of 800
   * closes in a probe; none after 400 closes by the other side, and none once the process waited
   * 5 ms before opening files). A descriptor the process opens in between is closed under its
   * owner, and when it is a directory being read, Deno panics ("unexpected error during
   * closedir: Bad file descriptor"). Waiting here keeps the caller's next files out of that
   * window.
   */
  async close(): Promise<void> {
    this.#client.close();
    await new Promise((resolve) => setTimeout(resolve, CLOSE_SETTLE_MS));
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

function metadata(opts: CallOptions): grpc.Metadata {
  const md = new grpc.Metadata();
  if (opts.namespace) md.set("containerd-namespace", opts.namespace);
  if (opts.lease) md.set("containerd-lease", opts.lease);
  return md;
}

function callOptions(opts: CallOptions): grpc.CallOptions {
  return opts.timeoutMs ? { deadline: Date.now() + opts.timeoutMs } : {};
}

function abortError(ctx: CallContext, signal: AbortSignal): Error {
  return fromGrpc(
    Object.assign(new Error("cancelled"), { code: 1, details: String(signal.reason ?? "aborted") }),
    ctx,
  );
}

// Turns grpc-js's event-emitting duplex stream into send()/next() so a protocol like
// Content.Write can be written as a plain sequence of awaits.
function replyQueue<Req, Res>(
  call: grpc.ClientDuplexStream<Req, Res>,
  ctx: CallContext,
  signal?: AbortSignal,
): DuplexCall<Req, Res> {
  const replies: Res[] = [];
  const waiters: Array<{ resolve: (r: Res | undefined) => void; reject: (e: Error) => void }> = [];
  let ended = false;
  let failure: Error | undefined;

  const settle = () => {
    while (waiters.length > 0 && (replies.length > 0 || ended || failure)) {
      const w = waiters.shift()!;
      if (replies.length > 0) w.resolve(replies.shift());
      else if (failure) w.reject(failure);
      else w.resolve(undefined);
    }
  };
  call.on("data", (msg: Res) => {
    replies.push(msg);
    settle();
  });
  call.on("end", () => {
    ended = true;
    settle();
  });
  call.on("error", (err) => {
    failure = fromGrpc(err, ctx);
    settle();
  });
  const onAbort = () => call.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  call.on("close", () => signal?.removeEventListener("abort", onAbort));

  return {
    send: (msg) => {
      call.write(msg);
    },
    next: () =>
      new Promise<Res | undefined>((resolve, reject) => {
        waiters.push({ resolve, reject });
        settle();
      }),
    end: () => call.end(),
    cancel: () => call.cancel(),
  };
}
