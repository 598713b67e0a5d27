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

Deno.test("authenticated /system/* and unauthenticated /function/* reach the provider", async () => {
  assert.equal(await (await get("/system/functions", good)).text(), "from provider");
  assert.equal(await (await get("/function/figlet")).text(), "from provider");
  assert.deepEqual(seen.slice(-2), ["/system/functions", "/function/figlet"]);
});

Deno.test("routes of issue #5 answer 501 naming it", async () => {
  const res = await get("/metrics");
  assert.equal(res.status, 501);
  assert.match(await res.text(), /issue #5/);
});
