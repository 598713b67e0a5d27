/** Unit tests: the NATS message layout of a queued request (headers + raw body). */

import assert from "node:assert/strict";
import { headers as natsHeaders, MsgHdrsImpl } from "@nats-io/nats-core";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { decodeRequest, encodeRequest } from "../../../src/queue/jetstream_codec.ts";
import type { QueuedRequest } from "../../../src/queue/types.ts";

const base: QueuedRequest = {
  id: "0b6a2c1e-5f1a-4c7e-9d3a-1f2e3d4c5b6a",
  name: "echo",
  namespace: "openfaas-fn",
  method: "POST",
  pathAndQuery: "/a/b?x=1&x=2",
  headers: [["X-A", "1"], ["content-type", "text/plain"], ["x-a", " 2 "], ["x-j", '{"q":"\\\\"}']],
  body: new Uint8Array([0, 255, 13, 10, 1]),
  callbackUrl: "http://cb.example/x?y=1",
  acceptedAt: 1_790_000_000_123,
};

// What the server stores and hands back: the headers' wire form, parsed again.
function wire(req: QueuedRequest): QueuedRequest {
  const { headers, data } = encodeRequest(req);
  const parsed = MsgHdrsImpl.decode((headers as MsgHdrsImpl).encode());
  return decodeRequest(parsed, data);
}

Deno.test("a request survives the NATS header wire format unchanged", async (t) => {
  const cases: { name: string; req: QueuedRequest }[] = [
    { name: "everything set", req: base },
    {
      name: "no callback, empty body, no headers",
      req: { ...base, callbackUrl: undefined, body: new Uint8Array(), headers: [] },
    },
    { name: "non-ASCII header value", req: { ...base, headers: [["x-name", "grüße 😀"]] } },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const got = wire(c.req);
      const want = { ...c.req };
      if (want.callbackUrl === undefined) delete want.callbackUrl;
      assert.deepEqual({ ...got, body: [...got.body] }, { ...want, body: [...want.body] });
    });
  }
});

Deno.test("the body is the payload itself, not re-encoded", () => {
  const { data } = encodeRequest(base);
  assert.equal(data, base.body);
});

Deno.test("encodeRequest() refuses values a NATS header cannot carry", async (t) => {
  const cases: { name: string; req: QueuedRequest; field: RegExp }[] = [
    {
      name: "CR LF in the path",
      req: { ...base, pathAndQuery: "/a\r\nX: y" },
      field: /pathAndQuery/,
    },
    { name: "blank-padded ID", req: { ...base, id: " id " }, field: /id/ },
    { name: "dot in the name", req: { ...base, name: "a.b" }, field: /name/ },
    { name: "empty namespace", req: { ...base, namespace: "" }, field: /namespace/ },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(
        () => encodeRequest(c.req),
        (err: Error) => err instanceof InvalidArgumentError && c.field.test(err.message),
      );
    });
  }
});

Deno.test("decodeRequest() names what is wrong with a foreign message", async (t) => {
  const good = encodeRequest(base).headers;
  const without = (key: string) => {
    const h = natsHeaders();
    for (const k of good.keys()) if (k !== key) h.set(k, good.get(k));
    return h;
  };
  const withValue = (key: string, value: string) => {
    const h = without(key);
    h.set(key, value);
    return h;
  };
  const cases = [
    { name: "no headers at all", h: undefined, want: /no Faasd-Queue/ },
    { name: "another format version", h: withValue("Faasd-Queue", "9"), want: /format "9"/ },
    { name: "no ID", h: without("Faasd-Id"), want: /no Faasd-Id/ },
    {
      name: "function without namespace",
      h: withValue("Faasd-Function", "echo"),
      want: /malformed/,
    },
    { name: "headers not JSON", h: withValue("Faasd-Headers", "[["), want: /not JSON/ },
    { name: "headers not pairs", h: withValue("Faasd-Headers", '[["a"]]'), want: /pairs/ },
    { name: "time not a number", h: withValue("Faasd-Accepted-At", "soon"), want: /not a number/ },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(
        () => decodeRequest(c.h, new Uint8Array()),
        (err: Error) => err instanceof InvalidArgumentError && c.want.test(err.message),
      );
    });
  }
});
