import assert from "node:assert/strict";
import { parseSize } from "../../../src/gateway/body.ts";

Deno.test("parseSize() reads bytes with binary and decimal units", async (t) => {
  const cases: [string, number | undefined][] = [
    ["4096", 4096],
    ["1Ki", 1024],
    ["20Mi", 20 * 1024 * 1024],
    ["1Gi", 1024 ** 3],
    ["5k", 5000],
    ["2M", 2_000_000],
    ["1G", 1e9],
    ["1TB", undefined],
    ["-1", undefined],
    ["", undefined],
    ["1.5Mi", undefined],
  ];
  for (const [input, want] of cases) {
    await t.step(`"${input}"`, () => assert.equal(parseSize(input), want));
  }
});
