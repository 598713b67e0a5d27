import assert from "node:assert/strict";
import { basicAuthChecker } from "../../../src/gateway/auth.ts";
import { createGatewayHandler } from "../../../src/gateway/router.ts";
import { createLogger } from "../../../src/log.ts";

const creds = { user: "admin", password: "s3cret" };
const good = `Basic ${btoa("admin:s3cret")}`;
const seen: string[] = [];

const handler = createGatewayHandler({
  checkAuth: basicAuthChecker(creds),
  provider: (req) => {
    seen.push(new URL(req.url).pathname);
    return Promise.resolve(new Response("from provider"));
  },
  invoke: async (req, target, pathAndQuery) => {
    const body = await req.text();
    seen.push(`invoke ${req.method} ${target.name}.${target.namespace} ${pathAndQuery}${body}`);
    return new Response("from function");
  },
  maxBodyBytes: 10,
  log: createLogger({ write: () => {} }),
});

const get = (path: string, auth?: string) =>
  handler(new Request(`http://gw${path}`, { headers: auth ? { authorization: auth } : {} }));

Deno.test("/healthz answers 200 without credentials", async () => {
  const res = await get("/healthz");
  assert.equal(res.status, 200);
});

Deno.test("/system/* needs basic auth and answers 401 with the Restricted realm", async (t) => {
  const cases = [
    { name: "no header", auth: undefined },
    { name: "wrong password", auth: `Basic ${btoa("admin:nope")}` },
    { name: "wrong user", auth: `Basic ${btoa("root:s3cret")}` },
    { name: "bearer token", auth: "Bearer abc" },
    { name: "garbage", auth: "Basic !!!" },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const before = seen.length;
      const res = await get("/system/functions", c.auth);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("www-authenticate"), 'Basic realm="Restricted"');
      assert.equal(seen.length, before, "the provider never sees the request");
    });
  }
});

Deno.test("authenticated /system/* reaches the provider", async () => {
  assert.equal(await (await get("/system/functions", good)).text(), "from provider");
  assert.equal(seen.at(-1), "/system/functions");
});

Deno.test("/function/NAME[.NS]/path?query is invoked without credentials", async () => {
  assert.equal(await (await get("/function/figlet")).text(), "from function");
  assert.equal(seen.at(-1), "invoke GET figlet.openfaas-fn /");
  await get("/function/figlet.dev/a/b?x=1&y=2");
  assert.equal(seen.at(-1), "invoke GET figlet.dev /a/b?x=1&y=2");
});

Deno.test("a body over the limit is 413", async (t) => {
  await t.step("declared by Content-Length: the function is never called", async () => {
    const before = seen.length;
    const res = await handler(
      new Request("http://gw/function/figlet", {
        method: "POST",
        body: "01234567890",
        headers: { "content-length": "11" },
      }),
    );
    assert.equal(res.status, 413);
    assert.match(await res.text(), /larger than the limit of 10 bytes/);
    assert.equal(seen.length, before);
  });
  await t.step("streamed: reading the body fails once the limit is passed", async () => {
    const body = ReadableStream.from([
      new TextEncoder().encode("012345"),
      new TextEncoder().encode("67890"),
    ]);
    const res = await handler(
      new Request(
        "http://gw/function/figlet",
        { method: "POST", body, duplex: "half" } as RequestInit,
      ),
    );
    assert.equal(res.status, 413);
  });
  await t.step("a body at the limit passes", async () => {
    const res = await handler(
      new Request("http://gw/function/figlet", { method: "POST", body: "0123456789" }),
    );
    assert.equal(res.status, 200);
    assert.equal(seen.at(-1), "invoke POST figlet.openfaas-fn /0123456789");
  });
});

Deno.test("GET / redirects to the UI", async () => {
  const res = await get("/");
  assert.equal(res.status, 302);
  assert.equal(res.headers.get("location"), "http://gw/ui/");
});

Deno.test("/async-function/ without a queue falls through to a 404 from the provider's routes", async () => {
  const res = await handler(new Request("http://gw/async-function/figlet", { method: "POST" }));
  assert.equal(await res.text(), "from provider");
});
