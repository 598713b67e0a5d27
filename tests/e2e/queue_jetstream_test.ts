/**
 * End-to-end: the JetStream queue backend against a real nats-server (Debian's, started per test
 * with its store in a temp dir): round trip of the request bytes, the concurrency bound, retry
 * with delay, interrupted redelivery after a consumer crash, file storage across kill -9 of the
 * server, fast failure while the server is down, and isolation between stream names.
 */

import assert from "node:assert/strict";
import { UnavailableError } from "../../src/errors.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { createJetStreamQueue } from "../../src/queue/jetstream.ts";
import type { Delivery, QueueBackend, QueuedRequest } from "../../src/queue/types.ts";
import { type NatsServer, startNatsServer } from "../fixtures/nats.ts";

// The NATS client keeps timers and sockets beyond a test's end while it closes; every test
// closes its backends and server in `finally`.
const opts = { sanitizeOps: false, sanitizeResources: false };

/** Collects log lines so a failing test can print them. */
function testLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ level: "debug", write: (l) => lines.push(l) }), { lines });
}

let seq = 0;
function request(over: Partial<QueuedRequest> = {}): QueuedRequest {
  seq++;
  return {
    id: `call-${Date.now()}-${seq}`,
    name: "echo",
    namespace: "openfaas-fn",
    method: "POST",
    pathAndQuery: "/",
    headers: [["content-type", "text/plain"]],
    body: new TextEncoder().encode(`body ${seq}`),
    acceptedAt: Date.now(),
    ...over,
  };
}

async function until<T>(
  what: string,
  f: () => T | undefined | Promise<T | undefined>,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function withServer(
  f: (nats: NatsServer, log: Logger & { lines: string[] }) => Promise<void>,
): Promise<void> {
  const nats = await startNatsServer();
  const log = testLog();
  try {
    await f(nats, log);
  } catch (err) {
    console.error(`--- queue log ---\n${log.lines.join("\n")}\n--- nats-server ---\n${nats.log()}`);
    throw err;
  } finally {
    await nats.stop();
  }
}

Deno.test(
  "a delivery carries the enqueued request back byte for byte, and ack empties the queue",
  opts,
  async () => {
    await withServer(async (nats, log) => {
      const q = await createJetStreamQueue({ url: nats.url, log });
      try {
        const body = new Uint8Array(512);
        for (let i = 0; i < body.length; i++) body[i] = i % 256;
        const sent = request({
          method: "PUT",
          name: "resize-image",
          namespace: "team-a",
          pathAndQuery: "/sub/path?x=1&y=%20two&x=3",
          headers: [
            ["x-b", "first"],
            ["content-type", "application/octet-stream"],
            ["x-b", "second, with comma"],
            ["x-padded", "  inner  spaces  "],
            ["x-unicode", "grüße"],
          ],
          body,
          callbackUrl: "http://127.0.0.1:9/cb?token=abc",
        });
        await q.enqueue(sent);
        assert.equal(await q.depth(), 1);

        const got: Delivery[] = [];
        q.consume(async (d) => {
          got.push(d);
          await d.begin();
          await d.ack();
        }, { concurrency: 1 });
        await until("the delivery", () => got.length === 1 || undefined);
        const d = got[0];
        assert.equal(d.attempt, 1);
        assert.equal(d.interrupted, false);
        assert.deepEqual({ ...d.request, body: [...d.request.body] }, { ...sent, body: [...body] });
        await until("depth 0 after ack", async () => (await q.depth()) === 0 || undefined);

        // A request without callback or body round-trips as such.
        const bare = request({ body: new Uint8Array(0), headers: [] });
        await q.enqueue(bare);
        await until("the second delivery", () => got.length === 2 || undefined);
        assert.equal(got[1].request.callbackUrl, undefined);
        assert.equal(got[1].request.body.length, 0);
        assert.deepEqual(got[1].request.headers, []);
      } finally {
        await q.close();
      }
    });
  },
);

Deno.test(
  "consume() keeps at most `concurrency` deliveries in flight and delivers each once",
  opts,
  async () => {
    await withServer(async (nats, log) => {
      const q = await createJetStreamQueue({ url: nats.url, log });
      try {
        const ids = new Set<string>();
        for (let i = 0; i < 12; i++) {
          const r = request();
          ids.add(r.id);
          await q.enqueue(r);
        }
        let inFlight = 0;
        let maxInFlight = 0;
        const seen: string[] = [];
        q.consume(async (d) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await d.begin();
          // Stands for the function's run time, so that deliveries overlap.
          await new Promise((r) => setTimeout(r, 100));
          seen.push(d.request.id);
          inFlight--;
          await d.ack();
        }, { concurrency: 3 });
        await until("all deliveries", () => seen.length >= 12 || undefined);
        await until("depth 0", async () => (await q.depth()) === 0 || undefined);
        assert.equal(maxInFlight, 3);
        assert.equal(seen.length, 12);
        assert.deepEqual(new Set(seen), ids);
      } finally {
        await q.close();
      }
    });
  },
);

Deno.test(
  "a delivery in flight longer than ack_wait is not redelivered (heartbeats)",
  opts,
  async () => {
    await withServer(async (nats, log) => {
      const q = await createJetStreamQueue({ url: nats.url, log, ackWaitMs: 1_000 });
      try {
        const r = request();
        await q.enqueue(r);
        const attempts: number[] = [];
        let done = false;
        q.consume(async (d) => {
          attempts.push(d.attempt);
          await d.begin();
          // Three times ack_wait: without working() heartbeats JetStream would redeliver meanwhile.
          await new Promise((r) => setTimeout(r, 3_000));
          await d.ack();
          done = true;
        }, { concurrency: 2 });
        await until("the ack", () => done || undefined);
        await until("depth 0", async () => (await q.depth()) === 0 || undefined);
        assert.deepEqual(attempts, [1]);
      } finally {
        await q.close();
      }
    });
  },
);

Deno.test(
  "retry(delay) redelivers after the delay with the next attempt, not interrupted",
  opts,
  async () => {
    await withServer(async (nats, log) => {
      const q = await createJetStreamQueue({ url: nats.url, log });
      try {
        const r = request();
        await q.enqueue(r);
        const seen: { attempt: number; interrupted: boolean; at: number }[] = [];
        q.consume(async (d) => {
          seen.push({ attempt: d.attempt, interrupted: d.interrupted, at: Date.now() });
          await d.begin();
          if (d.attempt < 3) await d.retry(1_000);
          else await d.ack();
        }, { concurrency: 2 });
        await until("three attempts", () => seen.length === 3 || undefined);
        assert.deepEqual(seen.map((s) => [s.attempt, s.interrupted]), [
          [1, false],
          [2, false],
          [3, false],
        ]);
        for (const i of [1, 2]) {
          const gap = seen[i].at - seen[i - 1].at;
          assert.ok(gap >= 950 && gap < 4_000, `redelivered after ${gap} ms, wanted about 1000`);
        }
        await until("depth 0", async () => (await q.depth()) === 0 || undefined);
      } finally {
        await q.close();
      }
    });
  },
);

Deno.test(
  "after a consumer dies mid-invocation, a begun request comes back interrupted and an unbegun one does not",
  opts,
  async () => {
    await withServer(async (nats, log) => {
      // This backend creates the consumer with the default ack_wait (30 s); the child's shorter
      // one replaces it, or the redeliveries below would not come within the wait.
      const ackWaitMs = 1_500;
      const q = await createJetStreamQueue({ url: nats.url, log });
      const begun = request();
      const pulled = request();
      await q.enqueue(begun);
      await q.enqueue(pulled);

      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../fixtures/jetstream_consumer.ts", import.meta.url).pathname,
          nats.url,
          "FAASD_QUEUE",
          String(ackWaitMs),
          "2",
          begun.id,
        ],
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      }).spawn();
      let out = "";
      const pump = (async () => {
        for await (const s of child.stdout.pipeThrough(new TextDecoderStream())) out += s;
      })();
      const errText = new Response(child.stderr).text();
      try {
        await until(
          "the child consumer to begin",
          () =>
            out.includes(`begun ${begun.id}`) && out.includes(`delivered ${pulled.id}`) ||
            undefined,
          30_000,
        );
        child.kill("SIGKILL");
        await child.status;
        const got = new Map<string, Delivery>();
        q.consume(async (d) => {
          got.set(d.request.id, d);
          await d.ack();
        }, { concurrency: 2 });
        await until("both redeliveries", () => got.size === 2 || undefined);
        assert.equal(got.get(begun.id)!.interrupted, true);
        assert.equal(got.get(begun.id)!.attempt, 2);
        assert.equal(got.get(pulled.id)!.interrupted, false);
        assert.equal(got.get(pulled.id)!.attempt, 2);
        await until("depth 0", async () => (await q.depth()) === 0 || undefined);
      } catch (err) {
        console.error(`--- child stdout ---\n${out}\n--- child stderr ---\n${await errText}`);
        throw err;
      } finally {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
        await child.status;
        await pump;
        await errText;
        await q.close();
      }
    });
  },
);

Deno.test(
  "a handler that throws after begin() gets its request back interrupted, not invoked twice",
  opts,
  async () => {
    await withServer(async (nats, log) => {
      const q = await createJetStreamQueue({ url: nats.url, log });
      try {
        await q.enqueue(request());
        const seen: [number, boolean][] = [];
        q.consume(async (d) => {
          seen.push([d.attempt, d.interrupted]);
          if (d.interrupted) return await d.ack();
          await d.begin();
          throw new Error("worker bug");
        }, { concurrency: 1 });
        await until("the redelivery", () => seen.length === 2 || undefined);
        assert.deepEqual(seen, [[1, false], [2, true]]);
        await until("depth 0", async () => (await q.depth()) === 0 || undefined);
        assert.ok(log.lines.some((l) => l.includes("queue handler failed")));
      } finally {
        await q.close();
      }
    });
  },
);

Deno.test(
  "accepted requests survive kill -9 and restart of nats-server; the backend reconnects",
  opts,
  async () => {
    await withServer(async (nats, log) => {
      const q = await createJetStreamQueue({ url: nats.url, log });
      try {
        const sent = new Set<string>();
        for (let i = 0; i < 20; i++) {
          const r = request();
          sent.add(r.id);
          await q.enqueue(r);
        }
        await nats.kill();
        await nats.restart();
        // The same backend reconnects by itself and accepts again.
        const after = request();
        await until("an enqueue after reconnecting", async () => {
          try {
            await q.enqueue(after);
            return true;
          } catch (err) {
            assert.ok(err instanceof UnavailableError, String(err));
            return undefined;
          }
        });
        sent.add(after.id);
        assert.equal(await q.depth(), 21);

        const seen: string[] = [];
        q.consume(async (d) => {
          seen.push(d.request.id);
          await d.ack();
        }, { concurrency: 4 });
        await until("every request", () => seen.length >= 21 || undefined);
        assert.deepEqual(new Set(seen), sent);
        assert.equal(seen.length, 21);

        // Consumers that were pulling while the server died resume after it comes back.
        await nats.kill();
        await nats.restart();
        const late = request();
        await until("an enqueue after the second restart", async () => {
          try {
            await q.enqueue(late);
            return true;
          } catch (err) {
            assert.ok(err instanceof UnavailableError, String(err));
            return undefined;
          }
        });
        await until("the late request", () => seen.includes(late.id) || undefined, 30_000);
        assert.equal(seen.length, 22);
      } finally {
        await q.close();
      }
    });
  },
);

Deno.test(
  "while nats-server is down, enqueue fails fast with UnavailableError naming the URL",
  opts,
  async () => {
    await withServer(async (nats, log) => {
      const q = await createJetStreamQueue({ url: nats.url, log, timeoutMs: 2_000 });
      try {
        await q.enqueue(request());
        await nats.kill();
        const started = Date.now();
        await assert.rejects(q.enqueue(request()), (err: Error) => {
          assert.ok(err instanceof UnavailableError, `${err.name}: ${err.message}`);
          assert.match(err.message, new RegExp(`cannot reach NATS at ${nats.url}`));
          return true;
        });
        assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
        await assert.rejects(q.depth(), UnavailableError);
      } finally {
        await q.close();
      }
      // Nothing listens now: creating a backend fails with the same kind of error.
      await assert.rejects(
        createJetStreamQueue({ url: nats.url, log, timeoutMs: 2_000 }),
        (err: Error) => err instanceof UnavailableError && err.message.includes(nats.url),
      );
    });
  },
);

Deno.test(
  "backends with different stream names on one server do not see each other's requests",
  opts,
  async () => {
    await withServer(async (nats, log) => {
      const a = await createJetStreamQueue({ url: nats.url, log, stream: "TEAM_A" });
      const b = await createJetStreamQueue({ url: nats.url, log, stream: "TEAM_B" });
      const backends: QueueBackend[] = [a, b];
      try {
        const ra = [request(), request()];
        const rb = [request(), request(), request()];
        for (const r of ra) await a.enqueue(r);
        for (const r of rb) await b.enqueue(r);
        assert.equal(await a.depth(), 2);
        assert.equal(await b.depth(), 3);
        const seenA: string[] = [];
        const seenB: string[] = [];
        a.consume(async (d) => {
          seenA.push(d.request.id);
          await d.ack();
        }, { concurrency: 2 });
        b.consume(async (d) => {
          seenB.push(d.request.id);
          await d.ack();
        }, { concurrency: 2 });
        await until("all five", () => seenA.length + seenB.length >= 5 || undefined);
        assert.deepEqual(seenA.sort(), ra.map((r) => r.id).sort());
        assert.deepEqual(seenB.sort(), rb.map((r) => r.id).sort());
      } finally {
        for (const q of backends) await q.close();
      }
    });
  },
);
