/**
 * The async queue's interface. `/async-function/…` stores a request with `enqueue()` and answers
 * 202 only after it resolves; a worker takes deliveries and invokes the functions. Two backends
 * implement it: a journal under the data dir (the default) and NATS JetStream (`--queue nats://…`).
 *
 * Delivery semantics: a request is invoked at most once per delivery. Before invoking, the worker
 * calls `begin()`, which records durably that an attempt is under way; a request found begun but
 * not settled after a crash is not invoked again but reported failed to its callback (its result
 * is unknown). So every accepted request is either invoked exactly once or reported failed.
 */

/** One accepted async invocation, everything needed to replay it later. */
export interface QueuedRequest {
  /** The call ID (`X-Call-Id`), unique per request. */
  id: string;
  name: string;
  namespace: string;
  method: string;
  /** Path after `/async-function/NAME[.NS]` (at least `/`) plus the query string. */
  pathAndQuery: string;
  /** Request headers as received (hop-by-hop ones removed), in order. */
  headers: [string, string][];
  body: Uint8Array;
  /** `X-Callback-Url`, when the caller gave one. */
  callbackUrl?: string;
  /** When it was accepted, in milliseconds since the epoch. */
  acceptedAt: number;
}

/** A request handed to the worker. Exactly one of `ack`, `retry` or `fail` settles it. */
export interface Delivery {
  request: QueuedRequest;
  /** 1 for the first attempt. */
  attempt: number;
  /**
   * True when a previous attempt began but never settled (the appliance died mid-invocation):
   * the worker must not invoke again; it reports the request failed.
   */
  interrupted: boolean;
  /** Records durably that an invocation is about to start. */
  begin(): Promise<void>;
  /** Done (invoked, callback delivered or not needed): the request leaves the queue. */
  ack(): Promise<void>;
  /** Put back for another attempt after `delayMs`. */
  retry(delayMs: number): Promise<void>;
}

/** A queue backend. */
export interface QueueBackend {
  /** Stores the request durably; throws UnavailableError when it cannot (disk full, server down). */
  enqueue(request: QueuedRequest): Promise<void>;
  /** Starts handing deliveries to `handler`, at most `concurrency` at a time. */
  consume(handler: (delivery: Delivery) => Promise<void>, opts: { concurrency: number }): void;
  /** Requests accepted and not yet settled. */
  depth(): Promise<number>;
  /** Stops delivering and waits for deliveries in progress to settle; flushes to disk. */
  close(): Promise<void>;
}
