import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { cpuResources, parseCpu, parseMemory } from "../../../src/provider/quantity.ts";

Deno.test("parseMemory() turns Kubernetes quantities into bytes", async (t) => {
  const cases: Array<{ name: string; value: string; bytes: number }> = [
    { name: "binary Mi", value: "128Mi", bytes: 128 * 2 ** 20 },
    { name: "decimal M", value: "128M", bytes: 128_000_000 },
    { name: "binary Gi", value: "1Gi", bytes: 2 ** 30 },
    { name: "fractional binary", value: "0.5Gi", bytes: 2 ** 29 },
    { name: "binary Ki", value: "64Ki", bytes: 65536 },
    { name: "binary Ti", value: "2Ti", bytes: 2 * 2 ** 40 },
    { name: "binary Pi", value: "1Pi", bytes: 2 ** 50 },
    { name: "decimal k", value: "100k", bytes: 100_000 },
    { name: "decimal G", value: "1G", bytes: 1e9 },
    { name: "decimal T", value: "1T", bytes: 1e12 },
    { name: "decimal P", value: "1P", bytes: 1e15 },
    { name: "exponent form", value: "5e6", bytes: 5_000_000 },
    { name: "upper-case exponent", value: "5E6", bytes: 5_000_000 },
    { name: "fractional exponent", value: "1.5e3", bytes: 1500 },
    { name: "plain number", value: "1024", bytes: 1024 },
    { name: "explicit plus sign", value: "+1Ki", bytes: 1024 },
    { name: "leading dot", value: ".5Ki", bytes: 512 },
    { name: "zero", value: "0", bytes: 0 },
    { name: "fraction of a byte rounds up", value: "1.5", bytes: 2 },
    { name: "milli-bytes round up", value: "100m", bytes: 1 },
    { name: "0.1Gi is exact, then rounded up", value: "0.1Gi", bytes: 107374183 },
  ];
  for (const c of cases) {
    await t.step(`${c.name}: "${c.value}"`, () => {
      assert.equal(parseMemory(c.value, "limits.memory"), c.bytes);
    });
  }
});

Deno.test("parseMemory() rejects garbage and negatives, naming the field", async (t) => {
  const cases: Array<{ name: string; value: string; message: RegExp }> = [
    {
      name: "unknown suffix",
      value: "12Q",
      message: /^limits\.memory "12Q" is not a valid quantity$/,
    },
    { name: "empty", value: "", message: /^limits\.memory "" is not a valid quantity$/ },
    { name: "negative", value: "-1Mi", message: /^limits\.memory "-1Mi" must not be negative$/ },
    { name: "lower-case binary suffix", value: "1mi", message: /not a valid quantity/ },
    { name: "space before suffix", value: "1 Mi", message: /not a valid quantity/ },
    { name: "leading space", value: " 1Mi", message: /not a valid quantity/ },
    { name: "two dots", value: "1.2.3", message: /not a valid quantity/ },
    { name: "suffix only", value: "Mi", message: /not a valid quantity/ },
    { name: "hex", value: "0x10", message: /not a valid quantity/ },
    { name: "bare exponent", value: "5e", message: /not a valid quantity/ },
    { name: "huge exponent", value: "1e100", message: /is out of range/ },
    { name: "beyond 2^53 bytes", value: "16Ei", message: /is out of range/ },
  ];
  for (const c of cases) {
    await t.step(`${c.name}: "${c.value}"`, () => {
      assert.throws(() => parseMemory(c.value, "limits.memory"), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, c.message);
        return true;
      });
    });
  }
});

Deno.test("parseCpu() turns cores into millicores exactly", async (t) => {
  const cases: Array<{ value: string; millis: number }> = [
    { value: "100m", millis: 100 },
    { value: "0.5", millis: 500 },
    { value: "2", millis: 2000 },
    { value: "0.3", millis: 300 },
    { value: "1.25", millis: 1250 },
    { value: "250m", millis: 250 },
    { value: "0.0001", millis: 1 },
    { value: "1e-1", millis: 100 },
  ];
  for (const c of cases) {
    await t.step(`"${c.value}" is ${c.millis}m`, () => {
      assert.equal(parseCpu(c.value, "limits.cpu"), c.millis);
    });
  }
  await t.step("a negative cpu names the field", () => {
    assert.throws(() => parseCpu("-1", "requests.cpu"), {
      name: "InvalidArgumentError",
      message: 'requests.cpu "-1" must not be negative',
    });
  });
});

Deno.test("cpuResources() maps limits to CFS quota/period and requests to shares", async (t) => {
  const cases: Array<{
    name: string;
    limit?: number;
    request?: number;
    want: ReturnType<typeof cpuResources>;
  }> = [
    { name: "nothing set gives no cpu section", want: undefined },
    {
      name: "a 100m limit is 10 ms per 100 ms",
      limit: 100,
      want: { quota: 10_000, period: 100_000 },
    },
    {
      name: "a 2-core limit is 200 ms per 100 ms",
      limit: 2000,
      want: { quota: 200_000, period: 100_000 },
    },
    { name: "a 500m request is 512 shares", request: 500, want: { shares: 512 } },
    { name: "a tiny request has the minimum of 2 shares", request: 1, want: { shares: 2 } },
    {
      name: "a huge request is capped at 262144 shares",
      request: 1_000_000,
      want: { shares: 262_144 },
    },
    {
      name: "limit and request together",
      limit: 250,
      request: 100,
      want: { quota: 25_000, period: 100_000, shares: 102 },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(cpuResources(c.limit, c.request), c.want));
  }
});
