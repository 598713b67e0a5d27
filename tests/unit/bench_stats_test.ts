import assert from "node:assert/strict";
import { formatRatio, measure, median, percentile, summarize } from "../../bench/harness.ts";
import { fileTimestamp, formatTable, summarizeFigures } from "../../bench/report.ts";

Deno.test("median()", async (t) => {
  const cases: Array<{ name: string; samples: number[]; want: number }> = [
    { name: "one sample is its own median", samples: [7], want: 7 },
    { name: "odd count takes the middle of the sorted samples", samples: [9, 1, 5], want: 5 },
    { name: "even count averages the two middle samples", samples: [4, 1, 3, 2], want: 2.5 },
    { name: "duplicates count once each", samples: [2, 2, 2, 9], want: 2 },
    { name: "empty is NaN", samples: [], want: NaN },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(median(c.samples), c.want));
  }
});

Deno.test("percentile() uses the nearest rank", async (t) => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  const cases: Array<{ name: string; samples: number[]; p: number; want: number }> = [
    { name: "p95 of 1..100 is the 95th value", samples: hundred, p: 95, want: 95 },
    { name: "p95 of 20 samples is the 19th", samples: range(20), p: 95, want: 19 },
    {
      name: "p95 of 10 samples rounds the rank up to the 10th",
      samples: range(10),
      p: 95,
      want: 10,
    },
    { name: "p95 of 3 samples is the largest", samples: [3, 1, 2], p: 95, want: 3 },
    { name: "p50 of 4 samples is the 2nd, not an average", samples: range(4), p: 50, want: 2 },
    { name: "p0 is the smallest", samples: [5, 3, 8], p: 0, want: 3 },
    { name: "p100 is the largest", samples: [5, 3, 8], p: 100, want: 8 },
    { name: "one sample is every percentile", samples: [42], p: 95, want: 42 },
    { name: "empty is NaN", samples: [], p: 95, want: NaN },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(percentile(c.samples, c.p), c.want));
  }
  await t.step("a percentile outside 0..100 is a RangeError", () => {
    assert.throws(() => percentile([1], 101), RangeError);
  });
});

Deno.test("summarize() reports n, median, p95, min, max and mean", () => {
  assert.deepEqual(summarize([4, 1, 3, 2]), {
    n: 4,
    median: 2.5,
    p95: 4,
    min: 1,
    max: 4,
    mean: 2.5,
  });
});

Deno.test("formatRatio()", async (t) => {
  const cases: Array<{ name: string; ratio: number; want: string }> = [
    { name: "equal medians", ratio: 1, want: "x1.00" },
    { name: "faster than the baseline", ratio: 0.7312, want: "x0.73" },
    { name: "slower, rounded to two decimals", ratio: 2.345, want: "x2.35" },
    { name: "hundredfold and more drop the decimals", ratio: 123.4, want: "x123" },
    { name: "a zero baseline gives no number", ratio: Infinity, want: "x?" },
    { name: "no samples gives no number", ratio: NaN, want: "x?" },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.equal(formatRatio(c.ratio), c.want));
  }
});

Deno.test("summarizeFigures() divides each median by its baseline's", async (t) => {
  const results = summarizeFigures([
    { name: "base", unit: "ms", samples: [2, 2, 2] },
    { name: "slow", unit: "ms", samples: [5, 3, 4], baseline: "base" },
  ]);
  await t.step("the baseline itself has no ratio", () => {
    assert.equal(results[0].ratio, undefined);
  });
  await t.step("ratio of medians", () => assert.equal(results[1].ratio, 2));
  await t.step("an unknown baseline is an error that names it", () => {
    assert.throws(
      () => summarizeFigures([{ name: "a", unit: "ms", samples: [1], baseline: "nope" }]),
      /baseline "nope"/,
    );
  });
});

Deno.test("formatTable() aligns columns and shows the ratio against the baseline", () => {
  const table = formatTable(summarizeFigures([
    { name: "Version RPC", unit: "ms", samples: [0.5, 0.5] },
    { name: "List", unit: "ms", samples: [10, 10], baseline: "Version RPC" },
  ]));
  const lines = table.trimEnd().split("\n");
  assert.equal(lines.length, 4);
  assert.match(lines[2], /^Version RPC {2}\s*2\s+0\.50\s+0\.50\s+0\.50\s+0\.50$/);
  assert.match(
    lines[3],
    /^List\s+2\s+10\.00\s+10\.00\s+10\.00\s+10\.00 {2}x20\.00 vs Version RPC$/,
  );
  // Right-aligned numbers end in the same column on every row.
  assert.equal(lines[2].indexOf("0.50") + 4, lines[3].indexOf("10.00") + 5);
});

Deno.test("measure() times only the iterations after the warm-up", async () => {
  const seen: string[] = [];
  const fig = await measure("f", (i) => void seen.push(`run ${i}`), {
    iterations: 3,
    warmup: 2,
    baseline: "b",
    before: (i) => void seen.push(`before ${i}`),
    after: (i) => void seen.push(`after ${i}`),
  });
  assert.equal(fig.samples.length, 3);
  assert.equal(fig.baseline, "b");
  assert.deepEqual(seen.slice(0, 3), ["before 0", "run 0", "after 0"]);
  assert.equal(seen.length, 15);
});

Deno.test("fileTimestamp() is ISO 8601 basic format in UTC", () => {
  assert.equal(fileTimestamp(new Date("2025-01-02T03:04:05.678Z")), "20250102T030405Z");
});

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}
