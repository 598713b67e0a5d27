/** The journal's FIFO and min-heap. */

import assert from "node:assert/strict";
import { Fifo, MinHeap } from "../../../src/queue/collections.ts";

Deno.test("Fifo keeps order across its internal compaction", () => {
  const q = new Fifo<number>();
  const out: number[] = [];
  for (let i = 0; i < 5000; i++) {
    q.push(i);
    if (i % 3 === 0) out.push(q.shift()!);
  }
  while (q.length > 0) out.push(q.shift()!);
  assert.deepEqual(out, Array.from({ length: 5000 }, (_, i) => i));
  assert.equal(q.shift(), undefined);
});

Deno.test("MinHeap pops in key order, ties included", () => {
  const h = new MinHeap<{ k: number; id: number }>((x) => x.k);
  const keys = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 101);
  keys.forEach((k, id) => h.push({ k, id }));
  const popped: number[] = [];
  while (h.length > 0) popped.push(h.pop()!.k);
  assert.deepEqual(popped, [...keys].sort((a, b) => a - b));
  assert.equal(h.pop(), undefined);
  assert.equal(h.peek(), undefined);
});
