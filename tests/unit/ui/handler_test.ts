import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import type { FunctionStatus } from "../../../src/provider/types.ts";
import { createUiHandler } from "../../../src/ui/handler.ts";
import { fakeApi, status } from "./fake_api.ts";

const AUTH = `Basic ${btoa("admin:pw")}`;

async function withUi(
  functions: FunctionStatus[],
  fn: (
    ui: (req: Request) => Promise<Response>,
    api: Awaited<ReturnType<typeof fakeApi>>,
  ) => Promise<void>,
) {
  await using api = await fakeApi(functions);
  const seenAuth: Array<string | null> = [];
  const ui = createUiHandler({
    api: (req) => {
      seenAuth.push(req.headers.get("authorization"));
      return api.handler(req);
    },
    log: createLogger({ write: () => {} }),
  });
  await fn(ui, api);
  assert.ok(seenAuth.every((a) => a === AUTH), "every API call carries the user's credentials");
}

/** A page's text with each run of whitespace made one space, so markup layout does not matter. */
async function read(res: Response): Promise<string> {
  return (await res.text()).replace(/\s+/g, " ");
}

const get = (path: string) => new Request(`http://gw${path}`, { headers: { authorization: AUTH } });

function post(path: string, form: Record<string, string | string[]>, headers = {}) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) {
    for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
  }
  return new Request(`http://gw${path}`, {
    method: "POST",
    headers: {
      authorization: AUTH,
      "content-type": "application/x-www-form-urlencoded",
      "sec-fetch-site": "same-origin",
      ...headers,
    },
    body,
  });
}

Deno.test("the list with no functions says so and links to the deploy form", () =>
  withUi([], async (ui) => {
    const res = await ui(get("/ui/"));
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/html/);
    const text = await read(res);
    assert.match(text, /id="no-functions"/);
    assert.match(text, /No functions in namespace <code>openfaas-fn<\/code>/);
    assert.match(text, /href="\/ui\/deploy\?namespace=openfaas-fn"/);
    assert.doesNotMatch(text, /<table/);
    assert.match(text, /<option value="team">team<\/option>/, "the namespace selector");
  }));

Deno.test("the list shows each function's status, replicas, invocations and image", () =>
  withUi([
    status({ name: "alpha", invocationCount: 42, replicas: 2, availableReplicas: 2 }),
    status({ name: "beta", replicas: 1, availableReplicas: 0, image: "x/beta:2" }),
    status({ name: "gamma", replicas: 0, availableReplicas: 0 }),
    status({ name: "other", namespace: "team" }),
  ], async (ui) => {
    const text = await read(await ui(get("/ui/")));
    const rows = [...text.matchAll(/<tr data-function="([^"]+)">([\s\S]*?)<\/tr>/g)];
    assert.deepEqual(rows.map((r) => r[1]), ["alpha", "beta", "gamma"]);
    const [alpha, beta, gamma] = rows.map((r) => r[2]);
    assert.match(alpha, /class="badge ready">Ready</);
    assert.match(alpha, /class="replicas">2\/2</);
    assert.match(alpha, /class="invocations">42</);
    assert.match(alpha, /href="\/ui\/function\/alpha\?namespace=openfaas-fn"/);
    assert.match(beta, /Not ready/);
    assert.match(beta, /x\/beta:2/);
    assert.match(gamma, /Scaled to zero/);

    const team = await read(await ui(get("/ui/?namespace=team")));
    assert.match(team, /data-function="other"/);
    assert.match(team, /<option value="team" selected>/);
    const fragment = await read(await ui(get("/ui/fragment/functions?namespace=team")));
    assert.match(fragment, /^<div class="scroll"> <table id="functions">/);
    assert.match(fragment, /data-function="other"/);
  }));

Deno.test("an unknown namespace shows the API's 400 message with the selector still there", () =>
  withUi([], async (ui) => {
    const res = await ui(get("/ui/?namespace=nope"));
    assert.equal(res.status, 400);
    const text = await read(res);
    assert.match(text, /class="error"[^>]*>namespace &quot;nope&quot; not found</);
    assert.match(text, /<option value="nope" selected>/);
  }));

Deno.test("markup in an env value, label or image is rendered as text", () =>
  withUi([
    status({
      name: "hello",
      image: 'img"><script>alert(1)</script>',
      envVars: { GREETING: "<script>alert('env')</script>" },
      labels: { team: "<b>blue</b>" },
    }),
  ], async (ui) => {
    for (const path of ["/ui/function/hello", "/ui/fragment/function?name=hello", "/ui/"]) {
      const text = await read(await ui(get(path)));
      assert.doesNotMatch(text, /<script>alert/, path);
      assert.doesNotMatch(text, /<b>blue/, path);
      assert.match(text, /img&quot;&gt;&lt;script&gt;alert\(1\)&lt;\/script&gt;/, path);
    }
    const page = await read(await ui(get("/ui/function/hello")));
    assert.match(page, /GREETING=&lt;script&gt;alert\(&#39;env&#39;\)&lt;\/script&gt;/);
    assert.match(page, /team=&lt;b&gt;blue&lt;\/b&gt;/);
  }));

Deno.test("log lines are relayed as NDJSON, never as HTML, so a <script> in one stays inert", () =>
  withUi([status({ name: "hello" })], async (ui, api) => {
    const line = "<script>alert('log')</script>";
    api.logLines.push({
      name: "hello",
      namespace: "openfaas-fn",
      instance: "hello-1",
      timestamp: "2026-01-01T00:00:00Z",
      text: line,
    });
    const res = await ui(get("/ui/logs?name=hello&namespace=openfaas-fn&tail=10"));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    const records = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(records[0].text, line);
    const missing = await ui(get("/ui/logs?name=nope"));
    assert.equal(missing.status, 404);
  }));

Deno.test("closing the log stream ends the follow at once", () =>
  withUi([status({ name: "hello" })], async (ui, api) => {
    api.followUntilAborted = true;
    api.logLines.push({
      name: "hello",
      namespace: "openfaas-fn",
      instance: "hello-1",
      timestamp: "2026-01-01T00:00:00Z",
      text: "first",
    });
    const res = await ui(get("/ui/logs?name=hello"));
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /"text":"first"/);
    assert.equal(api.logSignals.length, 1);
    assert.equal(api.logSignals[0].aborted, false, "still following");
    await reader.cancel();
    assert.equal(api.logSignals[0].aborted, true);
  }));

Deno.test("pages forbid inline script and framing; the script and stylesheet are served", () =>
  withUi([], async (ui) => {
    const res = await ui(get("/ui/"));
    const csp = res.headers.get("content-security-policy")!;
    assert.match(csp, /script-src 'self';/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(await read(res), /<script>/, "no inline script");
    const js = await ui(get("/ui/app.js"));
    assert.match(js.headers.get("content-type")!, /^text\/javascript/);
    assert.match(await read(js), /getReader/);
    const css = await ui(get("/ui/style.css"));
    assert.match(css.headers.get("content-type")!, /^text\/css/);
    await css.body?.cancel();
    const bare = await ui(get("/ui"));
    assert.equal(bare.status, 303);
    assert.equal(bare.headers.get("location"), "/ui/");
  }));

Deno.test("the deploy form lists the namespace's secrets", () =>
  withUi([], async (ui, api) => {
    await api.secrets.create("team", "db-password", new TextEncoder().encode("x"));
    const text = await read(await ui(get("/ui/deploy?namespace=team")));
    assert.match(text, /<select id="secrets" name="secrets" multiple[^>]*>/);
    assert.match(text, /<option value="db-password">db-password<\/option>/);
    assert.match(text, /<input type="hidden" name="namespace" value="team">/);
    const none = await read(await ui(get("/ui/deploy")));
    assert.match(none, /No secrets in this namespace/);
  }));

Deno.test("POST /ui/deploy sends the form as a deployment and redirects to the list", () =>
  withUi([], async (ui, api) => {
    const res = await ui(post("/ui/deploy", {
      image: " registry.local/fn/hello:1 ",
      name: "hello",
      namespace: "team",
      envProcess: "",
      env: "GREETING=a=b=c\r\n\r\n# a comment\r\nEMPTY=",
      labels: "com.openfaas.scale.max=5",
      annotations: "topic=demo",
      secrets: ["one", "two"],
    }));
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/ui/?namespace=team&done=deployed");
    assert.deepEqual(api.deployed, [{
      service: "hello",
      image: "registry.local/fn/hello:1",
      namespace: "team",
      envVars: { GREETING: "a=b=c", EMPTY: "" },
      labels: { "com.openfaas.scale.max": "5" },
      annotations: { topic: "demo" },
      secrets: ["one", "two"],
      readOnlyRootFilesystem: false,
    }]);
    const list = await read(await ui(get(res.headers.get("location")!)));
    assert.match(list, /class="flash"[^>]*>Function deployed\.</);
  }));

Deno.test("POST /ui/deploy shows the API's error and keeps what was typed", async (t) => {
  const cases: Array<
    { name: string; form: Record<string, string>; status: number; error: RegExp }
  > = [
    {
      name: "a bad function name (the API's 400)",
      form: { name: "Bad_Name", env: "A=<i>x</i>" },
      status: 400,
      error: /invalid function name &quot;Bad_Name&quot;: use lowercase letters/,
    },
    {
      name: "an env line without =",
      form: { name: "ok", env: "A=1\nJUSTTEXT" },
      status: 400,
      error: /environment, line 2: &quot;JUSTTEXT&quot; is not KEY=VALUE/,
    },
    {
      name: "an unknown namespace",
      form: { name: "ok", namespace: "nope" },
      status: 404,
      error: /namespace &quot;nope&quot; not found/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () =>
      withUi([], async (ui, api) => {
        const res = await ui(post("/ui/deploy", { image: "x/y:1", env: "", ...c.form }));
        assert.equal(res.status, c.status);
        const text = await read(res);
        assert.match(text, c.error);
        assert.match(text, /id="image" name="image"[^>]*value="x\/y:1"/, "the image is kept");
        assert.doesNotMatch(text, /<i>x/);
        assert.deepEqual(api.deployed, []);
      }));
  }
});

Deno.test("a cross-site form post is refused with 403 and does nothing", async (t) => {
  const cases = [
    { name: "Sec-Fetch-Site: cross-site", headers: { "sec-fetch-site": "cross-site" }, ok: false },
    { name: "Sec-Fetch-Site: same-site", headers: { "sec-fetch-site": "same-site" }, ok: false },
    {
      name: "a foreign Origin",
      headers: { "sec-fetch-site": "", origin: "http://evil.example" },
      ok: false,
    },
    { name: "Origin: null", headers: { "sec-fetch-site": "", origin: "null" }, ok: false },
    {
      name: "our own Origin (behind TLS)",
      headers: { "sec-fetch-site": "", origin: "https://gw" },
      ok: true,
    },
    { name: "no browser headers (curl)", headers: { "sec-fetch-site": "" }, ok: true },
  ];
  for (const c of cases) {
    await t.step(c.name, () =>
      withUi([], async (ui, api) => {
        const req = post("/ui/deploy", { image: "x/y:1", name: "hello" }, c.headers);
        // An empty value stands for "header not sent".
        for (const [k, v] of Object.entries(c.headers)) if (v === "") req.headers.delete(k);
        const res = await ui(req);
        await res.body?.cancel();
        assert.equal(res.status, c.ok ? 303 : 403);
        assert.equal(api.deployed.length, c.ok ? 1 : 0);
      }));
  }
});

Deno.test("POST /ui/scale scales and redirects; a bad count shows the API's message", () =>
  withUi([status({ name: "hello", namespace: "team" })], async (ui, api) => {
    const res = await ui(post("/ui/scale", { name: "hello", namespace: "team", replicas: "3" }));
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/ui/function/hello?namespace=team&done=scaled");
    assert.deepEqual(api.scaled, [{ name: "hello", namespace: "team", replicas: 3 }]);
    const page = await read(await ui(get(res.headers.get("location")!)));
    assert.match(page, /<dd id="replicas">3<\/dd>/);
    assert.match(page, /Scale requested\./);

    const bad = await ui(post("/ui/scale", { name: "hello", namespace: "team", replicas: "-1" }));
    assert.equal(bad.status, 400);
    assert.match(await read(bad), /replicas must be a whole number ≥ 0, got &quot;-1&quot;/);
    const empty = await ui(post("/ui/scale", { name: "hello", namespace: "team", replicas: "" }));
    assert.equal(empty.status, 400);
    assert.match(await read(empty), /&quot;replicas&quot; is required/);
    assert.equal(api.scaled.length, 1);
  }));

Deno.test("delete asks for confirmation, then deletes and redirects to the list", () =>
  withUi([status({ name: "hello" })], async (ui, api) => {
    const ask = await read(await ui(get("/ui/delete?name=hello&namespace=openfaas-fn")));
    assert.match(ask, /<form class="inline" method="post" action="\/ui\/delete">/);
    assert.deepEqual(api.removed, [], "asking deletes nothing");
    const res = await ui(post("/ui/delete", { name: "hello", namespace: "openfaas-fn" }));
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/ui/?namespace=openfaas-fn&done=deleted");
    assert.deepEqual(api.removed, ["hello.openfaas-fn"]);
    const again = await ui(post("/ui/delete", { name: "hello", namespace: "openfaas-fn" }));
    assert.equal(again.status, 404);
    assert.match(await read(again), /function &quot;hello&quot; not found/);
  }));

Deno.test("an unknown function or page is a 404 page with the reason", () =>
  withUi([], async (ui) => {
    const fn = await ui(get("/ui/function/ghost?namespace=team"));
    assert.equal(fn.status, 404);
    assert.match(
      await read(fn),
      /function &quot;ghost&quot; not found in namespace &quot;team&quot;/,
    );
    const malformed = await ui(get("/ui/function/%E0%A4%A"));
    assert.equal(malformed.status, 400);
    await malformed.body?.cancel();
    const page = await ui(get("/ui/nothing-here"));
    assert.equal(page.status, 404);
    await page.body?.cancel();
    const put = await ui(new Request("http://gw/ui/", { method: "PUT" }));
    assert.equal(put.status, 405);
    await put.body?.cancel();
  }));
