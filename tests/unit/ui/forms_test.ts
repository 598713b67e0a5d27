import assert from "node:assert/strict";
import { InvalidArgumentError, PayloadTooLargeError } from "../../../src/errors.ts";
import {
  deployFields,
  MAX_FORM_BYTES,
  parseKeyValueLines,
  readForm,
  toDeployment,
} from "../../../src/ui/forms.ts";

Deno.test("parseKeyValueLines() reads KEY=VALUE lines", async (t) => {
  const cases: Array<{ name: string; text: string; want: Record<string, string> | RegExp }> = [
    { name: "empty", text: "", want: {} },
    { name: "one pair", text: "A=1", want: { A: "1" } },
    { name: "CRLF lines and blanks", text: "A=1\r\n\r\nB=2\r\n", want: { A: "1", B: "2" } },
    { name: "a value with =", text: "URL=http://x/?a=b", want: { URL: "http://x/?a=b" } },
    { name: "an empty value", text: "EMPTY=", want: { EMPTY: "" } },
    { name: "spaces around the key", text: "  A =x ", want: { A: "x " } },
    { name: "comments", text: "# note\nA=1", want: { A: "1" } },
    { name: "markup kept as text", text: "X=<script>", want: { X: "<script>" } },
    { name: "no =", text: "A=1\nBROKEN", want: /env, line 2: "BROKEN" is not KEY=VALUE/ },
    { name: "an empty key", text: "=1", want: /env, line 1: the key is empty/ },
    { name: "a key twice", text: "A=1\nA=2", want: /env, line 2: "A" is given twice/ },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      if (c.want instanceof RegExp) {
        assert.throws(() => parseKeyValueLines(c.text, "env"), (err: Error) => {
          assert.ok(err instanceof InvalidArgumentError);
          assert.match(err.message, c.want as RegExp);
          return true;
        });
      } else {
        assert.deepEqual(parseKeyValueLines(c.text, "env"), c.want);
      }
    });
  }
});

Deno.test("toDeployment() leaves out empty fields", () => {
  const form = new URLSearchParams({ image: "x/y:1", name: "hello", namespace: "team" });
  assert.deepEqual(toDeployment(deployFields(form)), {
    service: "hello",
    image: "x/y:1",
    namespace: "team",
  });
});

Deno.test("readForm() takes URL-encoded bodies up to the limit", async () => {
  const req = (body: string, type = "application/x-www-form-urlencoded") =>
    new Request("http://gw/ui/deploy", { method: "POST", headers: { "content-type": type }, body });
  assert.equal((await readForm(req("a=1&b=%3C"))).get("b"), "<");
  await assert.rejects(readForm(req("{}", "application/json")), InvalidArgumentError);
  await assert.rejects(readForm(req("a=" + "x".repeat(MAX_FORM_BYTES))), PayloadTooLargeError);
});
