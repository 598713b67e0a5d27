import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { scalePolicy } from "../../../src/gateway/scale_policy.ts";

const S = "com.openfaas.scale.";

Deno.test("scalePolicy reads the com.openfaas.scale labels", async (t) => {
  const cases = [
    { name: "no labels: bounds only", labels: {}, want: { min: 1, max: 20 } },
    {
      name: "type rps with target",
      labels: { [S + "type"]: "rps", [S + "target"]: "100" },
      want: { min: 1, max: 20, load: { type: "rps", target: 100 } },
    },
    {
      name: "capacity, default target 10",
      labels: { [S + "type"]: "capacity" },
      want: { min: 1, max: 20, load: { type: "capacity", target: 10 } },
    },
    {
      name: "target alone is rps",
      labels: { [S + "target"]: "2.5", [S + "min"]: "2", [S + "max"]: "4" },
      want: { min: 2, max: 4, load: { type: "rps", target: 2.5 } },
    },
    {
      name: "factor 0 turns load scaling off",
      labels: { [S + "target"]: "5", [S + "factor"]: "0" },
      want: { min: 1, max: 20 },
    },
    {
      name: "other factors are accepted",
      labels: { [S + "target"]: "5", [S + "factor"]: "20" },
      want: { min: 1, max: 20, load: { type: "rps", target: 5 } },
    },
    {
      name: "zero with the default 15m",
      labels: { [S + "zero"]: "true" },
      want: { min: 1, max: 20, zeroAfterMs: 900_000 },
    },
    {
      name: "zero with a duration",
      labels: { [S + "zero"]: "TRUE", [S + "zero-duration"]: "1m30s" },
      want: { min: 1, max: 20, zeroAfterMs: 90_000 },
    },
    {
      name: "zero false ignores the duration",
      labels: { [S + "zero"]: "false", [S + "zero-duration"]: "nonsense" },
      want: { min: 1, max: 20 },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(scalePolicy("fn", c.labels), c.want));
  }
});

Deno.test("scalePolicy names the label that is wrong", async (t) => {
  const cases = [
    { labels: { [S + "type"]: "cpu" }, message: /scale\.type must be rps or capacity, got "cpu"/ },
    { labels: { [S + "target"]: "0" }, message: /scale\.target must be a number above 0/ },
    { labels: { [S + "target"]: "ten" }, message: /scale\.target .* got "ten"/ },
    { labels: { [S + "factor"]: "150" }, message: /scale\.factor must be a number 0-100/ },
    { labels: { [S + "zero"]: "yes" }, message: /scale\.zero must be true or false/ },
    {
      labels: { [S + "zero"]: "true", [S + "zero-duration"]: "15 minutes" },
      message: /zero-duration must be a duration/,
    },
    { labels: { [S + "min"]: "5", [S + "max"]: "2" }, message: /scale\.max \(2\) is below/ },
  ];
  for (const c of cases) {
    await t.step(JSON.stringify(c.labels), () => {
      assert.throws(() => scalePolicy("fn", c.labels), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, c.message);
        return true;
      });
    });
  }
});
