import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AlreadyExistsError, NotFoundError } from "../../../src/errors.ts";
import { createLogger } from "../../../src/log.ts";
import { createProviderHandler, type Functions } from "../../../src/provider/routes.ts";
import { SecretStore } from "../../../src/provider/secrets.ts";

/** Records what the routes asked of the function manager. */
function fakeFunctions(calls: string[]): Functions {
  return {
    list: (ns) => {
      calls.push(`list ${ns}`);
      return Promise.resolve([]);
    },
    get: (name, ns) =>
      name === "known"
        ? Promise.resolve({
          name,
          namespace: ns,
          image: "x",
          invocationCount: 0,
          replicas: 1,
          availableReplicas: 1,
          createdAt: "2026-01-01T00:00:00Z",
        })
        : Promise.reject(new NotFoundError(`function "${name}" not found in namespace "${ns}"`)),
    deploy: (body) => {
      calls.push(`deploy ${JSON.stringify(body)}`);
      return (body as { service: string }).service === "taken"
        ? Promise.reject(new AlreadyExistsError("exists"))
        : Promise.resolve();
    },
    update: (body) => {
      calls.push(`update ${JSON.stringify(body)}`);
      return Promise.reject(new NotFoundError("not deployed"));
    },
    remove: (name, ns) => {
      calls.push(`remove ${name} ${ns}`);
      return Promise.resolve();
    },
    scale: (name, ns, n) => {
      calls.push(`scale ${name} ${ns} ${n}`);
      return Promise.resolve();
    },
    checkNamespace: (ns) =>
      ns === "openfaas-fn" || ns === "team"
        ? Promise.resolve()
        : Promise.reject(new NotFoundError(`namespace "${ns}" not found`)),
  };
}

async function withHandler(
  fn: (h: (r: Request) => Promise<Response>, calls: string[]) => Promise<void>,
) {
  const dir = await mkdtemp(join(tmpdir(), "faasd-routes-"));
  const calls: string[] = [];
  try {
    const handler = createProviderHandler({
      functions: fakeFunctions(calls),
      namespaces: {
        list: () => Promise.resolve(["openfaas-fn", "team"]),
        get: (name) => Promise.resolve({ name, labels: { openfaas: "1" }, annotations: {} }),
        create: () => Promise.resolve(),
        update: () => Promise.resolve(),
        delete: () => Promise.resolve(),
      },
      secrets: new SecretStore(dir),
      logs: {
        query(q) {
          // Resolved at once: a fake has nothing to read before it listens.
          return Promise.resolve((async function* () {
            const all = [
              {
                name: q.name,
                namespace: q.namespace,
                instance: "a",
                timestamp: "2026-01-01T00:00:00.000Z",
                text: "one",
              },
              {
                name: q.name,
                namespace: q.namespace,
                instance: "b",
                timestamp: "2026-01-01T00:00:01.000Z",
                text: "two",
              },
            ];
            for (const r of q.tail ? all.slice(-q.tail) : all) yield await Promise.resolve(r);
          })());
        },
      },
      info: { release: "1.2.3", sha: "abc", arch: "x86_64" },
      log: createLogger({ write: () => {} }),
    });
    await fn(handler, calls);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const req = (method: string, path: string, body?: unknown) =>
  new Request(`http://p${path}`, {
    method,
    // A string is sent as it is (to test broken JSON); anything else as JSON.
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });

Deno.test("/system/info reports the faasd-ts provider with every field set", () =>
  withHandler(async (h) => {
    const res = await h(req("GET", "/system/info"));
    assert.deepEqual(await res.json(), {
      provider: {
        provider: "faasd-ts",
        orchestration: "containerd",
        version: { release: "1.2.3", sha: "abc" },
      },
      version: { release: "1.2.3", sha: "abc" },
      arch: "x86_64",
    });
  }));

Deno.test("function routes answer with the contract's status codes", () =>
  withHandler(async (h, calls) => {
    assert.equal(
      (await h(req("POST", "/system/functions", { service: "a", image: "x" }))).status,
      202,
    );
    assert.equal(
      (await h(req("POST", "/system/functions", { service: "taken", image: "x" }))).status,
      409,
    );
    assert.equal(
      (await h(req("PUT", "/system/functions", { service: "a", image: "x" }))).status,
      404,
    );
    assert.equal((await h(req("GET", "/system/function/nope"))).status, 404);
    assert.equal((await h(req("GET", "/system/functions?namespace=ghost"))).status, 400);
    assert.equal((await h(req("POST", "/system/functions", "{not json"))).status, 400);
    assert.equal(
      (await h(req("DELETE", "/system/functions?namespace=team", { functionName: "a" }))).status,
      202,
    );
    assert.equal((await h(req("POST", "/system/scale-function/a", { replicas: 3 }))).status, 202);
    assert.equal((await h(req("POST", "/system/scale-function/a", { replicas: -1 }))).status, 400);
    assert.ok(calls.includes("remove a team"), calls.join("\n"));
    assert.ok(calls.includes("scale a openfaas-fn 3"), calls.join("\n"));
  }));

Deno.test("secrets are created, listed without values, updated and deleted", () =>
  withHandler(async (h) => {
    assert.equal(
      (await h(req("POST", "/system/secrets", { name: "api-key", value: "v1" }))).status,
      201,
    );
    assert.equal(
      (await h(req("POST", "/system/secrets", { name: "api-key", value: "v1" }))).status,
      409,
    );
    assert.equal(
      (await h(req("POST", "/system/secrets", { name: "raw", rawValue: btoa("\u0000\u0001bin") })))
        .status,
      201,
    );
    const listed = await (await h(req("GET", "/system/secrets"))).json();
    assert.deepEqual(listed, [{ name: "api-key", namespace: "openfaas-fn" }, {
      name: "raw",
      namespace: "openfaas-fn",
    }]);
    assert.equal(
      (await h(req("PUT", "/system/secrets", { name: "api-key", value: "v2" }))).status,
      202,
    );
    assert.equal(
      (await h(req("PUT", "/system/secrets", { name: "missing", value: "v2" }))).status,
      404,
    );
    assert.equal(
      (await h(req("POST", "/system/secrets", { name: "../etc", value: "x" }))).status,
      400,
    );
    const notBase64 = await h(req("POST", "/system/secrets", { name: "r2", rawValue: "a b!" }));
    assert.equal(notBase64.status, 400);
    assert.match(await notBase64.text(), /rawValue of secret "r2" is not standard base64/);
    assert.equal((await h(req("DELETE", "/system/secrets", { name: "api-key" }))).status, 202);
    assert.equal((await h(req("DELETE", "/system/secrets", { name: "api-key" }))).status, 404);
  }));

Deno.test("/system/logs streams NDJSON, 404 for an unknown function, 422 for a bad query", () =>
  withHandler(async (h) => {
    const res = await h(req("GET", "/system/logs?name=known&tail=1"));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.text), ["two"]);
    assert.deepEqual(Object.keys(lines[0]).sort(), [
      "instance",
      "name",
      "namespace",
      "text",
      "timestamp",
    ]);
    assert.equal((await h(req("GET", "/system/logs?name=ghost"))).status, 404);
    assert.equal((await h(req("GET", "/system/logs?name=known&tail=x"))).status, 422);
    assert.equal((await h(req("GET", "/system/logs?name=known&since=yesterday"))).status, 422);
    assert.equal((await h(req("GET", "/system/logs"))).status, 422);
  }));
