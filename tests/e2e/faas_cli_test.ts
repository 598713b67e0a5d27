/**
 * End-to-end: the HTTP calls faas-cli 0.18 makes (it is not installable here), in its order and
 * shapes, against the gateway port of a real appliance — login, version, namespaces, secrets,
 * deploy (PUT → 404 → POST, then a rolling PUT), deploy from a stack.yml, list, describe, invoke
 * with every verb, logs, remove — and the bad input faas-cli users send by mistake.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { parse as parseYaml } from "yaml";
import { Containerd } from "../../src/containerd/client.ts";
import { type Appliance, cleanUpAppliance, startAppliance } from "../fixtures/appliance.ts";
import { functionImage } from "../fixtures/function_image.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";
import { until } from "../fixtures/poll.ts";

const SOCKET = "/run/containerd/containerd.sock";

/** A faas-cli style call to the gateway: basic auth on /system, JSON body when given. */
async function call(
  app: Appliance,
  method: string,
  path: string,
  body?: unknown,
  opts: { auth?: string | null; raw?: BodyInit } = {},
) {
  const headers: Record<string, string> = {};
  const auth = opts.auth === undefined ? app.auth : opts.auth;
  if (auth !== null) headers.authorization = auth;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers,
    body: opts.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

/** `faas-cli invoke`: always `/function/NAME.NAMESPACE`, never with credentials. */
async function invoke(app: Appliance, fn: string, path: string, init: RequestInit = {}) {
  const res = await fetch(`${app.url}/function/${fn}${path}`, init);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return {
    status: res.status,
    headers: res.headers,
    bytes,
    text: new TextDecoder().decode(bytes),
  };
}

/** `faas-cli deploy`: PUT first, POST only when the PUT says 404. */
async function deploy(app: Appliance, body: Record<string, unknown>) {
  const put = await call(app, "PUT", "/system/functions", body);
  if (put.status !== 404) return { put, post: undefined };
  return { put, post: await call(app, "POST", "/system/functions", body) };
}

const STACK = (registry: string, ns: string) => `
version: 1.0
provider:
  name: openfaas
  gateway: http://127.0.0.1:8080
functions:
  stacked:
    lang: dockerfile
    handler: ./stacked
    image: ${registry}/fn/hello:1
    namespace: ${ns}
    fprocess: cat
    environment:
      MODE: stack
      EQUATION: a=b=c
    secrets:
      - api-key
    labels:
      team: blue
      com.openfaas.scale.max: "3"
    annotations:
      topic: demo
    limits:
      memory: 64Mi
      cpu: 500m
    requests:
      memory: 16Mi
    readonly_root_filesystem: true
`;

interface StackFunction {
  image: string;
  namespace?: string;
  fprocess?: string;
  environment?: Record<string, string>;
  secrets?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  limits?: { memory?: string; cpu?: string };
  requests?: { memory?: string; cpu?: string };
  constraints?: string[];
  readonly_root_filesystem?: boolean;
}

/** What `faas-cli deploy -f stack.yml` sends for one function (nil Go maps become null). */
function fromStack(name: string, f: StackFunction) {
  return {
    service: name,
    image: f.image,
    namespace: f.namespace ?? "",
    envProcess: f.fprocess ?? "",
    envVars: f.environment ?? null,
    constraints: f.constraints ?? null,
    secrets: f.secrets ?? null,
    labels: f.labels ?? null,
    annotations: f.annotations ?? null,
    limits: f.limits ?? null,
    requests: f.requests ?? null,
    readOnlyRootFilesystem: f.readonly_root_filesystem ?? false,
  };
}

Deno.test("faas-cli: every call faas-cli makes works against the gateway port", async (t) => {
  await using registry = await startRegistry();
  await pushImage(registry, "fn/hello", "1", functionImage("v1"));
  await pushImage(registry, "fn/hello", "2", functionImage("v2"));
  const client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const suffix = randomBytes(3).toString("hex");
  const ns = `cli-${suffix}`;
  const spare = `cli-spare-${suffix}`;
  const app = await startAppliance({ args: ["--max-body-size", "1Mi"] });
  const fn = `hello.${ns}`;
  let ok = false;
  let nsRemoved = false;
  try {
    await t.step("login: GET /system/functions with the right credentials only", async () => {
      const good = await call(app, "GET", "/system/functions");
      assert.equal(good.status, 200, good.text);
      assert.deepEqual(good.json(), []);
      const wrong = [
        { name: "no header", auth: null },
        { name: "wrong password", auth: `Basic ${btoa("admin:wrong")}` },
        { name: "wrong user", auth: app.auth.replace(/^Basic /, "Basic eA") },
        { name: "user only", auth: `Basic ${btoa("admin")}` },
        { name: "not base64", auth: "Basic !!!" },
        { name: "bearer token", auth: "Bearer eyJhbGciOiJub25lIn0.e30." },
        { name: "empty bearer", auth: "Bearer" },
      ];
      for (const w of wrong) {
        const res = await call(app, "GET", "/system/functions", undefined, { auth: w.auth });
        assert.equal(res.status, 401, w.name);
        assert.equal(res.headers.get("www-authenticate"), 'Basic realm="Restricted"', w.name);
      }
    });

    await t.step("version: GET /system/info has every field, provider faasd-ts", async () => {
      const res = await call(app, "GET", "/system/info");
      assert.equal(res.status, 200, res.text);
      const info = res.json();
      assert.equal(info.provider.provider, "faasd-ts");
      assert.equal(info.provider.orchestration, "containerd");
      for (const v of [info.provider.version.release, info.provider.version.sha, info.arch]) {
        assert.ok(typeof v === "string" && v !== "", res.text);
      }
      assert.ok(info.version.release && info.version.sha, res.text);
    });

    await t.step("namespace create (trailing slash) / list / get / update / remove", async () => {
      for (const name of [ns, spare]) {
        const res = await call(app, "POST", "/system/namespace/", {
          name,
          labels: { openfaas: "1" },
          annotations: { owner: "faas-cli-test" },
        });
        assert.equal(res.status, 201, res.text);
      }
      const again = await call(app, "POST", "/system/namespace/", {
        name: spare,
        labels: { openfaas: "1" },
      });
      assert.equal(again.status, 409, again.text);
      const unlabelled = await call(app, "POST", "/system/namespace/", { name: `x-${suffix}` });
      assert.equal(unlabelled.status, 400, unlabelled.text);
      assert.match(unlabelled.text, /openfaas=1/);
      const list = (await call(app, "GET", "/system/namespaces")).json();
      assert.equal(list[0], "openfaas-fn");
      assert.ok(list.includes(ns) && list.includes(spare), JSON.stringify(list));
      const got = await call(app, "GET", `/system/namespace/${spare}`);
      assert.equal(got.status, 200, got.text);
      assert.deepEqual(got.json(), {
        name: spare,
        labels: { openfaas: "1" },
        annotations: { owner: "faas-cli-test" },
      });
      const updated = await call(app, "PUT", `/system/namespace/${spare}`, {
        name: spare,
        labels: { openfaas: "1", tier: "gold" },
        annotations: { note: "updated" },
      });
      assert.equal(updated.status, 202, updated.text);
      assert.deepEqual((await call(app, "GET", `/system/namespace/${spare}`)).json(), {
        name: spare,
        labels: { openfaas: "1", tier: "gold" },
        annotations: { note: "updated" },
      });
      const mismatch = await call(app, "PUT", `/system/namespace/${spare}`, {
        name: ns,
        labels: { openfaas: "1" },
      });
      assert.equal(mismatch.status, 400, mismatch.text);
      const removed = await call(app, "DELETE", `/system/namespace/${spare}`);
      assert.equal(removed.status, 202, removed.text);
      assert.equal((await call(app, "GET", `/system/namespace/${spare}`)).status, 404);
      assert.equal((await call(app, "DELETE", `/system/namespace/${spare}`)).status, 404);
      assert.equal(
        (await call(app, "PUT", `/system/namespace/${spare}`, {
          name: spare,
          labels: { openfaas: "1" },
        })).status,
        404,
      );
    });

    // Every byte value, as `faas-cli secret create --from-file` sends a binary file.
    const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
    const rawValue = btoa(String.fromCharCode(...binary));

    await t.step("secret create (literal, from file) / update / list / remove", async () => {
      const literal = await call(app, "POST", "/system/secrets", {
        name: "api-key",
        namespace: ns,
        value: "s3cr3t",
      });
      assert.ok([200, 201].includes(literal.status), literal.text);
      const file = await call(app, "POST", "/system/secrets", {
        name: "blob.bin",
        namespace: ns,
        rawValue,
      });
      assert.ok([200, 201].includes(file.status), file.text);
      const dup = await call(app, "POST", "/system/secrets", {
        name: "api-key",
        namespace: ns,
        value: "other",
      });
      assert.equal(dup.status, 409, dup.text);
      const temp = await call(app, "POST", "/system/secrets", {
        name: "temp",
        namespace: ns,
        value: "x",
      });
      assert.ok([200, 201].includes(temp.status), temp.text);
      const update = await call(app, "PUT", "/system/secrets", {
        name: "temp",
        namespace: ns,
        value: "y",
      });
      assert.ok([200, 202].includes(update.status), update.text);
      const missing = await call(app, "PUT", "/system/secrets", {
        name: "nope",
        namespace: ns,
        value: "y",
      });
      assert.equal(missing.status, 404, missing.text);
      const list = await call(app, "GET", `/system/secrets?namespace=${ns}`);
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(list.json(), [
        { name: "api-key", namespace: ns },
        { name: "blob.bin", namespace: ns },
        { name: "temp", namespace: ns },
      ]);
      assert.doesNotMatch(list.text, /s3cr3t|value/i, "values are never listed");
      const removed = await call(app, "DELETE", "/system/secrets", { name: "temp", namespace: ns });
      assert.ok([200, 202].includes(removed.status), removed.text);
      const gone = await call(app, "DELETE", `/system/secrets?namespace=${ns}`, { name: "temp" });
      assert.equal(gone.status, 404, gone.text);
    });

    const deployment = {
      service: "hello",
      image: `${registry.host}/fn/hello:1`,
      namespace: ns,
      envProcess: "",
      envVars: { GREETING: "hi" },
      constraints: null,
      secrets: ["api-key", "blob.bin"],
      labels: null,
      annotations: null,
      limits: null,
      requests: null,
      readOnlyRootFilesystem: false,
    };

    await t.step("deploy: PUT answers 404, then POST deploys", async () => {
      const { put, post } = await deploy(app, deployment);
      assert.equal(put.status, 404, put.text);
      assert.ok(post && [200, 202].includes(post.status), String(post?.text));
      const res = await invoke(app, fn, "/cgi-bin/version");
      assert.equal(res.status, 200);
      assert.equal(res.text, "v1\n");
    });

    await t.step("a secret from a file reaches the function byte for byte", async () => {
      const res = await invoke(app, fn, "/cgi-bin/secret?blob.bin");
      assert.equal(res.status, 200);
      assert.deepEqual(res.bytes, binary);
      assert.equal((await invoke(app, fn, "/cgi-bin/secret?api-key")).text, "s3cr3t");
    });

    await t.step("deploy again: PUT is a rolling update (200/202)", async () => {
      const { put, post } = await deploy(app, {
        ...deployment,
        image: `${registry.host}/fn/hello:2`,
      });
      assert.ok([200, 202].includes(put.status), put.text);
      assert.equal(post, undefined);
      await until("the new version to answer", async () => {
        return (await invoke(app, fn, "/cgi-bin/version")).text === "v2\n";
      });
      const status = (await call(app, "GET", `/system/function/hello?namespace=${ns}`)).json();
      assert.equal(status.image, `${registry.host}/fn/hello:2`);
    });

    await t.step("deploy -f stack.yml maps fprocess, environment, secrets, labels…", async () => {
      const stack = parseYaml(STACK(registry.host, ns)) as {
        functions: Record<string, StackFunction>;
      };
      const body = fromStack("stacked", stack.functions.stacked);
      const { put, post } = await deploy(app, body);
      assert.equal(put.status, 404, put.text);
      assert.ok(post && [200, 202].includes(post.status), String(post?.text));
      const status = (await call(app, "GET", `/system/function/stacked?namespace=${ns}`)).json();
      assert.equal(status.envProcess, "cat");
      assert.deepEqual(status.envVars, { MODE: "stack", EQUATION: "a=b=c" });
      assert.deepEqual(status.secrets, ["api-key"]);
      assert.deepEqual(status.labels, {
        team: "blue",
        "com.openfaas.scale.max": "3",
        faas_function: "stacked",
      });
      assert.deepEqual(status.annotations, { topic: "demo" });
      assert.deepEqual(status.limits, { memory: "64Mi", cpu: "500m" });
      assert.deepEqual(status.requests, { memory: "16Mi" });
      assert.equal(status.readOnlyRootFilesystem, true);
      const env = (await invoke(app, `stacked.${ns}`, "/cgi-bin/env")).text;
      assert.match(env, /^MODE=stack$/m);
      assert.match(env, /^EQUATION=a=b=c$/m);
      assert.match(env, /^fprocess=cat$/m);
      assert.equal(
        (await invoke(app, `stacked.${ns}`, "/cgi-bin/write")).text,
        "root-ro\ntmp-ok\n",
      );
    });

    await t.step("list and describe (usage, then list)", async () => {
      const list = await call(app, "GET", `/system/functions?namespace=${ns}`);
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(list.json().map((f: { name: string }) => f.name), ["hello", "stacked"]);
      const one = await call(app, "GET", `/system/function/hello?namespace=${ns}&usage=1`);
      assert.equal(one.status, 200, one.text);
      const d = one.json();
      assert.equal(d.name, "hello");
      assert.equal(d.namespace, ns);
      assert.ok(d.replicas >= 1 && d.availableReplicas >= 1, one.text);
      assert.ok(d.invocationCount >= 1, one.text);
      assert.ok(d.usage.totalMemoryBytes > 0, one.text);
      const missing = await call(app, "GET", `/system/function/nope?namespace=${ns}&usage=1`);
      assert.equal(missing.status, 404, missing.text);
    });

    await t.step(
      "invoke with every verb: query and headers reach the function unchanged",
      async () => {
        const query = "?x=1&y=a%20b&z=%2F";
        for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]) {
          // busybox httpd wrongly sends a body after its CGI answer to HEAD, which the proxy's
          // kept-alive connection would then read as the next response (a 502); its static
          // files answer HEAD correctly.
          const path = method === "HEAD" ? `/${query}` : `/cgi-bin/env${query}`;
          const res = await invoke(app, fn, path, {
            method,
            headers: { "X-Custom-Header": "Value 1", "X-Call-Id": `call-${method}` },
          });
          assert.equal(res.status, 200, method);
          assert.equal(res.headers.get("x-call-id"), `call-${method}`);
          assert.ok(res.headers.get("x-duration-seconds"), method);
          if (method === "HEAD") {
            assert.equal(res.text, "", "HEAD has no body");
            continue;
          }
          assert.match(res.text, new RegExp(`^REQUEST_METHOD=${method}$`, "m"));
          assert.match(res.text, /^QUERY_STRING=x=1&y=a%20b&z=%2F$/m);
          assert.match(res.text, /^HTTP_X_CUSTOM_HEADER=Value 1$/m);
        }
        for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
          const body = `body for ${method}\n\u00e9\u0000`;
          const res = await invoke(app, fn, "/cgi-bin/echo", {
            method,
            body,
            headers: { "content-type": "text/plain" },
          });
          assert.equal(res.status, 200, method);
          assert.equal(res.text, body, method);
        }
        const missing = await invoke(app, `nope.${ns}`, "/");
        assert.equal(missing.status, 404);
      },
    );

    await t.step("logs: follow=false ends promptly, follow=true streams a new line", async () => {
      const marker = `m-${randomBytes(4).toString("hex")}`;
      await invoke(app, fn, `/cgi-bin/log?${marker}`);
      await until("the line in the logs", async () => {
        const res = await fetch(
          `${app.url}/system/logs?name=hello&namespace=${ns}&tail=-1&follow=false`,
          { headers: { authorization: app.auth }, signal: AbortSignal.timeout(10_000) },
        );
        assert.equal(res.status, 200);
        assert.match(res.headers.get("content-type") ?? "", /application\/x-ndjson/);
        // The body ends by itself: text() resolves well within the signal's 10 s.
        const text = await res.text();
        return text.split("\n").filter(Boolean).map((l) => JSON.parse(l).text).includes(
          `log line ${marker}`,
        );
      });

      const abort = new AbortController();
      const res = await fetch(
        `${app.url}/system/logs?name=hello&namespace=${ns}&tail=1&follow=true`,
        { headers: { authorization: app.auth }, signal: abort.signal },
      );
      assert.equal(res.status, 200);
      const followed = `f-${randomBytes(4).toString("hex")}`;
      await invoke(app, fn, `/cgi-bin/log?${followed}`);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const timer = setTimeout(() => abort.abort(), 15_000);
      try {
        while (!text.includes(followed)) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
        }
      } finally {
        clearTimeout(timer);
        abort.abort();
        await reader.cancel().catch(() => {});
      }
      const line = text.split("\n").find((l) => l.includes(followed));
      assert.ok(line, text);
      const record = JSON.parse(line);
      assert.equal(record.name, "hello");
      assert.equal(record.namespace, ns);
      assert.equal(record.text, `log line ${followed}`);
      const missing = await call(app, "GET", `/system/logs?name=nope&namespace=${ns}`);
      assert.equal(missing.status, 404, missing.text);
    });

    await t.step(
      "bad input: invalid names and malformed JSON are 400s naming the fault",
      async () => {
        const badFn = await call(app, "POST", "/system/functions", {
          service: "Bad_Name",
          image: `${registry.host}/fn/hello:1`,
          namespace: ns,
        });
        assert.equal(badFn.status, 400, badFn.text);
        assert.match(badFn.text, /"Bad_Name"/);
        const badNs = await call(app, "POST", "/system/namespace/", {
          name: "Bad.NS",
          labels: { openfaas: "1" },
        });
        assert.equal(badNs.status, 400, badNs.text);
        assert.match(badNs.text, /"Bad\.NS"/);
        for (const name of ["../escape", "a/b", ".."]) {
          const badSecret = await call(app, "POST", "/system/secrets", {
            name,
            namespace: ns,
            value: "x",
          });
          assert.equal(badSecret.status, 400, badSecret.text);
          assert.ok(badSecret.text.includes(`"${name}"`), badSecret.text);
        }
        const badRaw = await call(app, "POST", "/system/secrets", {
          name: "raw",
          namespace: ns,
          rawValue: "not base64!",
        });
        assert.equal(badRaw.status, 400, badRaw.text);
        assert.match(badRaw.text, /rawValue/);
        for (const path of ["/system/functions", "/system/secrets", "/system/namespace/"]) {
          const res = await call(app, "POST", path, undefined, { raw: '{"service": "x",' });
          assert.equal(res.status, 400, `${path}: ${res.text}`);
          assert.match(res.text, /JSON/);
        }
        const badLimit = await call(app, "POST", "/system/functions", {
          service: "limited",
          image: `${registry.host}/fn/hello:1`,
          namespace: ns,
          limits: { memory: "lots" },
        });
        assert.equal(badLimit.status, 400, badLimit.text);
        assert.match(badLimit.text, /lots/);
      },
    );

    await t.step("a body over --max-body-size is a 413 on /function and /system", async () => {
      const big = new Uint8Array(1024 * 1024 + 1).fill(0x61);
      const fnRes = await invoke(app, fn, "/cgi-bin/echo", { method: "POST", body: big });
      assert.equal(fnRes.status, 413, fnRes.text);
      const sysRes = await call(app, "POST", "/system/functions", undefined, { raw: big });
      assert.equal(sysRes.status, 413, sysRes.text);
      const secret = await call(app, "POST", "/system/secrets", undefined, {
        raw: JSON.stringify({ name: "huge", namespace: ns, value: "a".repeat(1024 * 1024) }),
      });
      assert.equal(secret.status, 413, secret.text);
      // Without Content-Length (chunked), the limit applies while the body streams.
      const chunked = () =>
        new ReadableStream<Uint8Array>({
          start(c) {
            for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(300 * 1024).fill(0x20));
            c.close();
          },
        });
      const streamed = await call(app, "PUT", "/system/functions", undefined, { raw: chunked() });
      assert.equal(streamed.status, 413, streamed.text);
      const list = await call(app, "GET", "/system/secrets?namespace=" + ns);
      assert.ok(!list.text.includes("huge"), "nothing half-stored");
    });

    await t.step("remove: the function is gone (404) afterwards", async () => {
      for (const name of ["hello", "stacked"]) {
        const res = await call(app, "DELETE", "/system/functions", {
          functionName: name,
          namespace: ns,
        });
        assert.ok([200, 202].includes(res.status), res.text);
        const after = await call(app, "GET", `/system/function/${name}?namespace=${ns}`);
        assert.equal(after.status, 404, after.text);
      }
      assert.equal((await invoke(app, fn, "/cgi-bin/version")).status, 404);
      const again = await call(app, "DELETE", `/system/functions?namespace=${ns}`, {
        functionName: "hello",
      });
      assert.equal(again.status, 404, again.text);
      assert.deepEqual((await call(app, "GET", `/system/functions?namespace=${ns}`)).json(), []);
      for (const name of ["api-key", "blob.bin"]) {
        const res = await call(app, "DELETE", "/system/secrets", { name, namespace: ns });
        assert.ok([200, 202].includes(res.status), res.text);
      }
      const removed = await call(app, "DELETE", `/system/namespace/${ns}`);
      assert.equal(removed.status, 202, removed.text);
    });
    nsRemoved = true;
    ok = true;
  } finally {
    if (!ok) console.error(app.log());
    const failures = await cleanUpAppliance(app, client, {
      namespace: ns,
      hadDefaultNamespace: hadDefault,
    });
    await client.namespaces.delete(spare).catch(() => {});
    await client.close();
    // The last step removed the namespace itself.
    const left = failures.filter((f) => !(nsRemoved && f.includes(`"${ns}": not found`)));
    assert.deepEqual(left, [], "cleanup");
  }
});
