import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { parsePullPolicy } from "../../../src/images/service.ts";

Deno.test("parsePullPolicy() accepts the three policies in any case and defaults to IfNotPresent", async (t) => {
  const cases: Array<[string | undefined, string]> = [
    [undefined, "IfNotPresent"],
    ["", "IfNotPresent"],
    ["always", "Always"],
    ["IfNotPresent", "IfNotPresent"],
    ["NEVER", "Never"],
  ];
  for (const [input, want] of cases) {
    await t.step(String(input), () => assert.equal(parsePullPolicy(input), want));
  }
});

Deno.test("parsePullPolicy() names a bad value and the valid ones", () => {
  assert.throws(() => parsePullPolicy("sometimes"), (err: Error) => {
    assert.ok(err instanceof InvalidArgumentError);
    assert.match(err.message, /invalid pull policy "sometimes": use Always, IfNotPresent or Never/);
    return true;
  });
});
