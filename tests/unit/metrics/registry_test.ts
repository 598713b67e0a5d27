import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { DEFAULT_BUCKETS, Registry } from "../../../src/metrics/registry.ts";

Deno.test("a counter renders HELP and TYPE lines, then one line per label set", async () => {
  const r = new Registry();
  const c = r.counter({ name: "requests_total", help: "Requests\nby code", labelNames: ["code"] });
  c.labels("200").inc();
  c.labels("200").inc(2);
  c.labels("500").inc();
  c.labels("404").inc(-5); // a counter never goes down
  assert.equal(
    await r.render(),
    "# HELP requests_total Requests\\nby code\n" +
      "# TYPE requests_total counter\n" +
      'requests_total{code="200"} 3\n' +
      'requests_total{code="500"} 1\n' +
      'requests_total{code="404"} 0\n',
  );
});

Deno.test("labels() returns the same series object for the same values", () => {
  const r = new Registry();
  const c = r.counter({ name: "x_total", help: "x", labelNames: ["a", "b"] });
  assert.equal(c.labels("1", "2"), c.labels("1", "2"));
  assert.notEqual(c.labels("1", "2"), c.labels("12", ""));
});

Deno.test("a gauge without labels renders without braces; a family with no series is left out", async () => {
  const r = new Registry();
  r.gauge({ name: "empty_gauge", help: "never set", labelNames: ["x"] });
  const g = r.gauge({ name: "temperature", help: "Degrees" });
  g.labels().set(21.5);
  g.labels().dec(0.5);
  assert.equal(
    await r.render(),
    "# HELP temperature Degrees\n# TYPE temperature gauge\ntemperature 21\n",
  );
});

Deno.test('a histogram renders cumulative _bucket lines ending in le="+Inf", then _sum and _count', async () => {
  const r = new Registry();
  const h = r.histogram({
    name: "latency_seconds",
    help: "Latency",
    labelNames: ["fn"],
    buckets: [0.1, 1, 10],
  });
  const s = h.labels('a"b');
  for (const v of [0.05, 0.1, 0.5, 2, 20]) s.observe(v);
  assert.equal(
    await r.render(),
    "# HELP latency_seconds Latency\n# TYPE latency_seconds histogram\n" +
      'latency_seconds_bucket{fn="a\\"b",le="0.1"} 2\n' +
      'latency_seconds_bucket{fn="a\\"b",le="1"} 3\n' +
      'latency_seconds_bucket{fn="a\\"b",le="10"} 4\n' +
      'latency_seconds_bucket{fn="a\\"b",le="+Inf"} 5\n' +
      'latency_seconds_sum{fn="a\\"b"} 22.65\n' +
      'latency_seconds_count{fn="a\\"b"} 5\n',
  );
});

Deno.test("a histogram without labels and with the default buckets", async () => {
  const r = new Registry();
  const h = r.histogram({ name: "d_seconds", help: "d" });
  h.labels().observe(0.003);
  const text = await r.render();
  const buckets = [...text.matchAll(/^d_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)];
  assert.deepEqual(buckets.map((m) => m[1]), [...DEFAULT_BUCKETS.map(String), "+Inf"]);
  assert.ok(buckets.every((m) => m[2] === "1"));
  assert.match(text, /^d_seconds_sum 0\.003$/m);
  assert.match(text, /^d_seconds_count 1$/m);
});

Deno.test("remove() and clear() drop series", async () => {
  const r = new Registry();
  const c = r.counter({ name: "c_total", help: "c", labelNames: ["f"] });
  c.labels("a").inc();
  c.labels("b").inc();
  c.remove("a");
  assert.deepEqual(c.labelValues(), [["b"]]);
  c.clear();
  assert.equal(await r.render(), "");
});

Deno.test("collect hooks run before each render", async () => {
  const r = new Registry();
  const g = r.gauge({ name: "replicas", help: "r", labelNames: ["f"] });
  let n = 0;
  r.onCollect(async () => {
    await Promise.resolve();
    g.labels("fn").set(++n);
  });
  assert.match(await r.render(), /^replicas\{f="fn"\} 1$/m);
  assert.match(await r.render(), /^replicas\{f="fn"\} 2$/m);
});

Deno.test("bad declarations are refused with a message naming the problem", async (t) => {
  const cases: Array<{ name: string; make: (r: Registry) => unknown; message: RegExp }> = [
    { name: "bad metric name", make: (r) => r.counter({ name: "a-b", help: "" }), message: /a-b/ },
    {
      name: "bad label name",
      make: (r) => r.gauge({ name: "g", help: "", labelNames: ["__x"] }),
      message: /__x/,
    },
    {
      name: "histogram with an le label",
      make: (r) => r.histogram({ name: "h", help: "", labelNames: ["le"] }),
      message: /le/,
    },
    {
      name: "buckets not ascending",
      make: (r) => r.histogram({ name: "h", help: "", buckets: [1, 0.5] }),
      message: /ascending/,
    },
    {
      name: "declared twice",
      make: (r) => {
        r.counter({ name: "dup", help: "" });
        r.gauge({ name: "dup", help: "" });
      },
      message: /twice/,
    },
    {
      name: "wrong number of label values",
      make: (r) => r.counter({ name: "c", help: "", labelNames: ["a", "b"] }).labels("x"),
      message: /got 1 values/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(() => c.make(new Registry()), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, c.message);
        return true;
      });
    });
  }
});
