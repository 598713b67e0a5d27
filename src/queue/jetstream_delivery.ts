/**
 * One JetStream message handed to the worker as a {@link Delivery}: decodes the request, looks
 * its begin marker up (a marker with the request's ID means an earlier delivery began and never
 * settled: `interrupted`), keeps the message alive with `working()` while the worker runs, and
 * implements begin/ack/retry on top of markers, ackAck and nak. See jetstream.ts for the design.
 */

import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { FailedPreconditionError, UnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { decodeRequest } from "./jetstream_codec.ts";
import { names } from "./jetstream_setup.ts";
import type { Delivery, QueuedRequest } from "./types.ts";

/** What a delivery needs from the backend. */
export interface DeliveryDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  /** The server URL without password, for messages. */
  display: string;
  timeoutMs: number;
  ackWaitMs: number;
  log: Logger;
  /** False while the client is disconnected. */
  connected(): boolean;
}

/** How long a message waits before it comes back when it could not be handed over. */
export const REDELIVER_SOON_MS = 1_000;

const TE = new TextEncoder();
const TD = new TextDecoder();

/** Hands `msg` to `handler` and returns once it is settled (by the handler, or nak'ed here). */
export async function deliver(
  deps: DeliveryDeps,
  msg: JsMsg,
  handler: (delivery: Delivery) => Promise<void>,
): Promise<void> {
  const { log } = deps;
  let request: QueuedRequest;
  try {
    request = decodeRequest(msg.headers, msg.data);
  } catch (err) {
    // Not written by faasd: it could never be invoked, and keeping it would only grow the queue.
    log.error("dropping a message that is not a queued request", {
      subject: msg.subject,
      seq: msg.seq,
      error: message(err),
    });
    msg.term("not a faasd queued request");
    return;
  }
  const markerStream = names.markerStream(deps.stream);
  const marker = names.marker(deps.stream, msg.seq);
  let interrupted: boolean;
  try {
    const found = await deps.jsm.streams.getMessage(markerStream, { last_by_subj: marker });
    // The ID check ignores a marker left by an earlier stream of the same name (sequences
    // restart at 1 when a stream is recreated).
    interrupted = found !== null && TD.decode(found.data) === request.id;
  } catch (err) {
    log.warn("cannot read begin marker from NATS, delivering later", {
      id: request.id,
      error: message(err),
    });
    msg.nak(REDELIVER_SOON_MS);
    return;
  }

  let settled = false;
  let hasMarker = interrupted;
  const heartbeat = setInterval(() => {
    try {
      msg.working();
    } catch {
      // Closed connection: nothing to keep alive any more.
    }
  }, Math.max(100, deps.ackWaitMs / 3));
  const settle = (what: string) => {
    if (settled) {
      throw new FailedPreconditionError(
        `Cannot ${what} queued request "${request.id}": already settled`,
      );
    }
    settled = true;
    clearInterval(heartbeat);
  };
  const dropMarker = async () => {
    if (!hasMarker) return;
    await deps.jsm.streams.purge(markerStream, { filter: marker });
    hasMarker = false;
  };
  const delivery: Delivery = {
    request,
    attempt: msg.info.deliveryCount,
    interrupted,
    begin: async () => {
      if (settled) throw new FailedPreconditionError(`Cannot begin "${request.id}": settled`);
      const failed = (why: string, cause?: unknown) =>
        new UnavailableError(
          `cannot record begin of "${request.id}" in NATS at ${deps.display}: ${why}`,
          { cause },
        );
      // As in enqueue(): a marker buffered until reconnect would outlive the worker's decision.
      if (!deps.connected()) throw failed("disconnected");
      try {
        await deps.js.publish(marker, TE.encode(request.id), { timeout: deps.timeoutMs });
      } catch (err) {
        throw failed(message(err), err);
      }
      hasMarker = true;
    },
    ack: async () => {
      settle("ack");
      // Ack first: a crash before the marker is gone leaves a harmless orphan marker.
      await ackConfirmed(deps, msg, request.id);
      try {
        await dropMarker();
      } catch (err) {
        log.warn("cannot remove begin marker; it stays as an orphan", {
          id: request.id,
          error: message(err),
        });
      }
    },
    retry: async (delayMs: number) => {
      settle("retry");
      try {
        // Before the nak, or the redelivery would look interrupted.
        await dropMarker();
      } catch (err) {
        // The redelivery will say interrupted and be reported failed: never invoked twice.
        log.warn("cannot remove begin marker before retry", {
          id: request.id,
          error: message(err),
        });
      }
      msg.nak(Math.max(0, Math.round(delayMs)));
    },
  };

  try {
    await handler(delivery);
  } catch (err) {
    log.error("queue handler failed", { id: request.id, error: err });
  } finally {
    if (!settled) {
      // The worker must settle every delivery; when it did not, hand the request back. Its
      // marker (if it began) makes the redelivery interrupted, so it is not invoked twice.
      settled = true;
      clearInterval(heartbeat);
      log.error("queue handler returned without settling; redelivering", { id: request.id });
      msg.nak(REDELIVER_SOON_MS);
    }
  }
}

// A lost ack would bring the request back as interrupted after ack_wait and report a second,
// wrong result to its callback; wait for the server's confirmation, trying a few times.
async function ackConfirmed(deps: DeliveryDeps, msg: JsMsg, id: string): Promise<void> {
  let last: unknown;
  for (let i = 0; i < 3; i++) {
    try {
      if (await msg.ackAck({ timeout: deps.timeoutMs })) return;
    } catch (err) {
      last = err;
    }
  }
  throw new UnavailableError(
    `cannot acknowledge "${id}" to NATS at ${deps.display}: ${message(last ?? "no reply")}`,
    { cause: last },
  );
}

/** The message of an error, or the value as text. */
export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
