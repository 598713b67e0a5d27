import assert from "node:assert/strict";
import {
  escapeHelp,
  escapeLabelValue,
  formatValue,
  isLabelName,
  isMetricName,
  labelPairs,
} from "../../../src/metrics/exposition.ts";

Deno.test("label values escape backslash, double quote and line feed, and nothing else", async (t) => {
  const cases = [
    { name: "plain", value: "figlet.openfaas-fn", want: "figlet.openfaas-fn" },
    { name: "backslash", value: "a\\b", want: "a\\\\b" },
    { name: "double quote", value: 'say "hi"', want: 'say \\"hi\\"' },
    { name: "line feed", value: "one\ntwo", want: "one\\ntwo" },
    { name: "all three, in order", value: '\\"\n', want: '\\\\\\"\\n' },
    { name: "tab and unicode kept", value: "tab\tü", want: "tab\tü" },
    { name: "empty", value: "", want: "" },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.equal(escapeLabelValue(c.value), c.want));
  }
});

Deno.test("help text escapes backslash and line feed but keeps double quotes", () => {
  assert.equal(escapeHelp('a "quoted"\\path\nnext'), 'a "quoted"\\\\path\\nnext');
});

Deno.test("sample values use +Inf, -Inf and NaN for the special ones", async (t) => {
  const cases: Array<[number, string]> = [
    [0, "0"],
    [42, "42"],
    [0.005, "0.005"],
    [2.5, "2.5"],
    [-1, "-1"],
    [1e21, "1e+21"],
    [Infinity, "+Inf"],
    [-Infinity, "-Inf"],
    [NaN, "NaN"],
  ];
  for (const [v, want] of cases) await t.step(want, () => assert.equal(formatValue(v), want));
});

Deno.test("label pairs are written in the declared order with escaped values", () => {
  assert.equal(
    labelPairs(["function_name", "code"], ['a"b', "200"]),
    'function_name="a\\"b",code="200"',
  );
  assert.equal(labelPairs([], []), "");
});

Deno.test("metric and label names follow the Prometheus data model", () => {
  assert.ok(isMetricName("gateway_function_invocation_total"));
  assert.ok(isMetricName("ns:rule_name"));
  assert.ok(!isMetricName("1bad"));
  assert.ok(!isMetricName("has-dash"));
  assert.ok(isLabelName("function_name"));
  assert.ok(!isLabelName("__reserved"));
  assert.ok(!isLabelName("a:b"));
});
