import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import {
  graceMs,
  parseDuration,
  scaleBounds,
  upstreamTimeoutMs,
} from "../../../src/provider/scale_labels.ts";

const dep = (labels: Record<string, string> = {}, envVars: Record<string, string> = {}) => ({
  service: "f",
  image: "x",
  labels,
  envVars,
});

Deno.test("scaleBounds() reads com.openfaas.scale.min and .max with defaults 1 and 20", async (t) => {
  const cases: Array<[Record<string, string>, { min: number; max: number }]> = [
    [{}, { min: 1, max: 20 }],
    [{ "com.openfaas.scale.min": "0" }, { min: 0, max: 20 }],
    [{ "com.openfaas.scale.min": "3", "com.openfaas.scale.max": "3" }, { min: 3, max: 3 }],
    [{ "com.openfaas.scale.max": "100" }, { min: 1, max: 100 }],
  ];
  for (const [labels, want] of cases) {
    await t.step(JSON.stringify(labels), () => assert.deepEqual(scaleBounds(dep(labels)), want));
  }
});

Deno.test("scaleBounds() names a bad label", async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ "com.openfaas.scale.min": "-1" }, /com.openfaas.scale.min must be a whole number/],
    [{ "com.openfaas.scale.max": "lots" }, /com.openfaas.scale.max must be a whole number/],
    [{ "com.openfaas.scale.min": "5", "com.openfaas.scale.max": "2" }, /is below/],
    [{ "com.openfaas.scale.max": "0" }, /is below/],
  ];
  for (const [labels, want] of cases) {
    await t.step(JSON.stringify(labels), () => {
      assert.throws(() => scaleBounds(dep(labels)), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, want);
        return true;
      });
    });
  }
});

Deno.test("parseDuration() reads Go durations; graceMs() defaults to 30 s and caps at 2 min", async (t) => {
  const cases: Array<[string, number | undefined]> = [
    ["30s", 30_000],
    ["1m30s", 90_000],
    ["500ms", 500],
    ["1.5s", 1500],
    ["2h", 7_200_000],
    ["", undefined],
    ["10", undefined],
    ["5s garbage", undefined],
  ];
  for (const [s, want] of cases) {
    await t.step(JSON.stringify(s), () => assert.equal(parseDuration(s), want));
  }
  assert.equal(graceMs(dep()), 30_000);
  assert.equal(graceMs(dep({}, { grace_period: "2s" })), 2000);
  assert.equal(graceMs(dep({}, { grace_period: "1h" })), 120_000);
  assert.equal(graceMs(dep({}, { grace_period: "soon" })), 30_000);
});

Deno.test("upstreamTimeoutMs() reads com.openfaas.timeout and names a bad value", () => {
  const dep = (v?: string) => ({
    service: "f",
    image: "i",
    annotations: v === undefined ? undefined : { "com.openfaas.timeout": v },
  });
  assert.equal(upstreamTimeoutMs(dep()), undefined);
  assert.equal(upstreamTimeoutMs(dep("")), undefined);
  assert.equal(upstreamTimeoutMs(dep("2m30s")), 150_000);
  assert.equal(upstreamTimeoutMs(dep("500ms")), 500);
  for (const bad of ["30", "0s", "soon"]) {
    assert.throws(() => upstreamTimeoutMs(dep(bad)), /com\.openfaas\.timeout must be a duration/);
  }
});
