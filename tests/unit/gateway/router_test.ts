import assert from "node:assert/strict";
import { basicAuthChecker } from "../../../src/gateway/auth.ts";
import { createGatewayHandler } from "../../../src/gateway/router.ts";
import { createLogger } from "../../../src/log.ts";

const creds = { user: "admin", password: "s3cret" };
const good = `Basic ${btoa("admin:s3cret")}`;
const logged: string[] = [];

const handler = createGatewayHandler({
  checkAuth: basicAuthChecker(creds),
  info: { release: "1.2.3", sha: "abc", arch: "x86_64" },
  listNamespaces: () => Promise.resolve(["openfaas-fn", "team-a"]),
  log: createLogger({ write: (l) => logged.push(l) }),
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
      const res = await get("/system/info", c.auth);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("www-authenticate"), 'Basic realm="Restricted"');
    });
  }
});

Deno.test("/system/info reports the faasd-ts provider, version and arch", async () => {
  const res = await get("/system/info", good);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    provider: {
      provider: "faasd-ts",
      orchestration: "containerd",
      version: { release: "1.2.3", sha: "abc" },
    },
    version: { release: "1.2.3", sha: "abc" },
    arch: "x86_64",
  });
});

Deno.test("/system/namespaces lists the function namespaces", async () => {
  const res = await get("/system/namespaces", good);
  assert.deepEqual(await res.json(), ["openfaas-fn", "team-a"]);
});

Deno.test("routes of later issues answer 501 naming them, unknown paths 404", async () => {
  const fn = await get("/system/functions", good);
  assert.equal(fn.status, 501);
  assert.match(await fn.text(), /not in this build yet/);
  const missing = await get("/nowhere");
  assert.equal(missing.status, 404);
});

Deno.test("an unexpected failure is a 500 without details, logged with its stack", async () => {
  const failing = createGatewayHandler({
    checkAuth: () => true,
    info: { release: "1", sha: "x", arch: "x" },
    listNamespaces: () => Promise.reject(new Error("disk on fire at /secret/path")),
    log: createLogger({ write: (l) => logged.push(l) }),
  });
  const res = await failing(new Request("http://gw/system/namespaces"));
  assert.equal(res.status, 500);
  assert.doesNotMatch(await res.text(), /disk on fire/);
  assert.match(logged.at(-1) ?? "", /disk on fire/);
});
