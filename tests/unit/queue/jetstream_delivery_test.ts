/**
 * Unit tests: the order of operations behind a JetStream delivery (begin marker, ack, purge, nak)
 * with in-memory fakes of the message and the JetStream clients. The real server is exercised in
 * tests/e2e/queue_jetstream_test.ts.
 */

import assert from "node:assert/strict";
import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { FailedPreconditionError, UnavailableError } from "../../../src/errors.ts";
import { silentLogger } from "../../../src/log.ts";
import { encodeRequest } from "../../../src/queue/jetstream_codec.ts";
import { deliver, type DeliveryDeps } from "../../../src/queue/jetstream_delivery.ts";
import type { Delivery, QueuedRequest } from "../../../src/queue/types.ts";

const req: QueuedRequest = {
  id: "call-1",
  name: "echo",
  namespace: "openfaas-fn",
  method: "POST",
  pathAndQuery: "/",
  headers: [],
  body: new Uint8Array([1]),
  acceptedAt: 1,
};

/** Fakes that log every call in order; `markers` is the markers stream's content. */
function fakes(opts: { markerId?: string; connected?: boolean; deliveryCount?: number } = {}) {
  const calls: string[] = [];
  const markers = new Map<string, string>();
  if (opts.markerId) markers.set("Q.begun.7", opts.markerId);
  const { headers, data } = encodeRequest(req);
  const msg = {
    seq: 7,
    subject: "Q.fn.openfaas-fn.echo",
    headers,
    data,
    info: { deliveryCount: opts.deliveryCount ?? 1 },
    working: () => calls.push("working"),
    nak: (ms?: number) => calls.push(`nak ${ms}`),
    term: () => calls.push("term"),
    ackAck: () => {
      calls.push("ackAck");
      return Promise.resolve(true);
    },
  } as unknown as JsMsg;
  const js = {
    publish: (subject: string, payload: Uint8Array) => {
      calls.push(`publish ${subject}`);
      markers.set(subject, new TextDecoder().decode(payload));
      return Promise.resolve({ seq: 1 });
    },
  } as unknown as JetStreamClient;
  const jsm = {
    streams: {
      getMessage: (_stream: string, q: { last_by_subj: string }) => {
        const v = markers.get(q.last_by_subj);
        return Promise.resolve(v === undefined ? null : { data: new TextEncoder().encode(v) });
      },
      purge: (stream: string, o: { filter: string }) => {
        calls.push(`purge ${stream} ${o.filter}`);
        markers.delete(o.filter);
        return Promise.resolve({ success: true, purged: 1 });
      },
    },
  } as unknown as JetStreamManager;
  const deps: DeliveryDeps = {
    js,
    jsm,
    stream: "Q",
    display: "nats://127.0.0.1:4222",
    timeoutMs: 100,
    ackWaitMs: 30_000,
    log: silentLogger,
    connected: () => opts.connected ?? true,
  };
  return { deps, msg, calls, markers };
}

Deno.test("begin() then ack(): marker published, message acked, then the marker purged", async () => {
  const f = fakes();
  await deliver(f.deps, f.msg, async (d) => {
    assert.equal(d.interrupted, false);
    assert.equal(d.attempt, 1);
    await d.begin();
    await d.ack();
  });
  assert.deepEqual(f.calls, ["publish Q.begun.7", "ackAck", "purge Q_BEGUN Q.begun.7"]);
  assert.equal(f.markers.size, 0);
});

Deno.test("retry() purges the marker before the nak, so the redelivery is not interrupted", async () => {
  const f = fakes();
  await deliver(f.deps, f.msg, async (d) => {
    await d.begin();
    await d.retry(2_500);
  });
  assert.deepEqual(f.calls, ["publish Q.begun.7", "purge Q_BEGUN Q.begun.7", "nak 2500"]);
});

Deno.test("a marker with the request's ID makes the delivery interrupted; another ID does not", async () => {
  for (const [markerId, want] of [["call-1", true], ["call-from-an-old-stream", false]] as const) {
    const f = fakes({ markerId, deliveryCount: 2 });
    let got: Delivery | undefined;
    await deliver(f.deps, f.msg, async (d) => {
      got = d;
      await d.ack();
    });
    assert.equal(got?.interrupted, want, markerId);
    assert.equal(got?.attempt, 2);
    // The interrupted delivery's ack removes the marker it found.
    assert.equal(f.calls.includes("purge Q_BEGUN Q.begun.7"), want);
  }
});

Deno.test("settling twice is refused, and an unsettled delivery is nak'ed for redelivery", async () => {
  const f = fakes();
  await deliver(f.deps, f.msg, async (d) => {
    await d.ack();
    await assert.rejects(d.retry(10), FailedPreconditionError);
    await assert.rejects(d.begin(), FailedPreconditionError);
  });
  const g = fakes();
  await deliver(g.deps, g.msg, async (d) => {
    await d.begin();
  });
  assert.deepEqual(g.calls, ["publish Q.begun.7", "nak 1000"]);
  assert.equal(g.markers.get("Q.begun.7"), "call-1", "the marker stays: redelivery is interrupted");
});

Deno.test("begin() while disconnected fails at once without publishing", async () => {
  const f = fakes({ connected: false });
  await deliver(f.deps, f.msg, async (d) => {
    await assert.rejects(
      d.begin(),
      (err: Error) =>
        err instanceof UnavailableError && err.message.includes("nats://127.0.0.1:4222"),
    );
    await d.retry(0);
  });
  assert.deepEqual(f.calls, ["nak 0"]);
});

Deno.test("a message that is not a queued request is terminated, never handed over", async () => {
  const f = fakes();
  (f.msg as { headers: unknown }).headers = undefined;
  let called = false;
  await deliver(f.deps, f.msg, () => {
    called = true;
    return Promise.resolve();
  });
  assert.equal(called, false);
  assert.deepEqual(f.calls, ["term"]);
});
