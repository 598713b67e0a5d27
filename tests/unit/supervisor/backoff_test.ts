import assert from "node:assert/strict";
import { Backoff } from "../../../src/supervisor/backoff.ts";

Deno.test("Backoff doubles from 1 s to at most 60 s for quick crashes", () => {
  let now = 0;
  const b = new Backoff({ now: () => now });
  const delays: number[] = [];
  for (let i = 0; i < 9; i++) {
    const startedAt = now;
    now += 500; // the task ran half a second
    const d = b.next(startedAt);
    delays.push(d);
    now += d;
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
});

Deno.test("Backoff starts again at 1 s after a run of 30 s or more", () => {
  let now = 0;
  const b = new Backoff({ now: () => now });
  for (const _ of [1, 2, 3]) b.next(now);
  assert.equal(b.next(now), 8000);
  const startedAt = now;
  now += 29_999;
  assert.equal(b.next(startedAt), 16000, "a run just short of 30 s does not reset");
  const again = now;
  now += 30_000;
  assert.equal(b.next(again), 1000);
  assert.equal(b.next(now), 2000);
});

Deno.test("Backoff honours its settings and reset()", () => {
  let now = 0;
  const b = new Backoff({ initialMs: 100, maxMs: 250, resetAfterMs: 10, now: () => now });
  assert.deepEqual([b.next(now), b.next(now), b.next(now)], [100, 200, 250]);
  b.reset();
  assert.equal(b.next(now), 100);
  now = 10;
  assert.equal(b.next(0), 100, "ran 10 ms: reset");
});
