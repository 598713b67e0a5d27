import assert from "node:assert/strict";
import { escapeHtml, Html, html, option, query } from "../../../src/ui/html.ts";

Deno.test("escapeHtml() makes markup characters inert in text and quoted attributes", async (t) => {
  const cases = [
    {
      name: "a script tag",
      in: "<script>alert(1)</script>",
      out: "&lt;script&gt;alert(1)&lt;/script&gt;",
    },
    { name: "an attribute break-out", in: `" onmouseover="x`, out: "&quot; onmouseover=&quot;x" },
    { name: "single quotes", in: "it's", out: "it&#39;s" },
    { name: "an existing entity", in: "&lt;", out: "&amp;lt;" },
    { name: "plain text", in: "hello-1.openfaas-fn", out: "hello-1.openfaas-fn" },
  ];
  for (const c of cases) await t.step(c.name, () => assert.equal(escapeHtml(c.in), c.out));
});

Deno.test("html`` escapes values, keeps fragments, joins lists and drops empty values", () => {
  const evil = "<img src=x onerror=alert(1)>";
  const inner = html`<b>${evil}</b>`;
  const out = html`<p title="${evil}">${inner}${[
    evil,
    html`<i>ok</i>`,
  ]}${null}${undefined}${false}${0}</p>`;
  assert.ok(out instanceof Html);
  assert.equal(
    out.value,
    '<p title="&lt;img src=x onerror=alert(1)&gt;"><b>&lt;img src=x onerror=alert(1)&gt;</b>' +
      "&lt;img src=x onerror=alert(1)&gt;<i>ok</i>0</p>",
  );
});

Deno.test("option() and query() build escaped selects and links", () => {
  assert.equal(option("a&b", true).value, '<option value="a&amp;b" selected>a&amp;b</option>');
  assert.equal(option("x", false).value, '<option value="x">x</option>');
  assert.equal(query({ name: "a b&c", namespace: undefined }), "?name=a+b%26c");
  assert.equal(query({}), "");
});
