/**
 * The UI's script in a real browser (Debian's chromium), against the UI handler over fake API
 * data: log lines and env values with markup stay text, the invoke panel shows status, headers,
 * latency and body, and status fragments refresh themselves.
 */

import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import { createUiHandler } from "../../../src/ui/handler.ts";
import { startBrowser } from "../../fixtures/browser.ts";
import { fakeApi, status } from "./fake_api.ts";

Deno.test("the UI script renders logs as text, runs the invoke panel and refreshes status", async () => {
  await using api = await fakeApi([
    status({ name: "hello", envVars: { HTML: "<img src=x onerror=window.__pwned=1>" } }),
  ]);
  const evil = ["<script>window.__pwned=2</script>", "<img src=x onerror=window.__pwned=3>"];
  for (const [i, text] of evil.entries()) {
    api.logLines.push({
      name: "hello",
      namespace: "openfaas-fn",
      instance: "hello-1",
      timestamp: `2026-01-01T00:00:0${i}Z`,
      text,
    });
  }
  const ui = createUiHandler({ api: api.handler, log: createLogger({ write: () => {} }) });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path.startsWith("/ui")) return await ui(req);
    if (path === "/function/hello.openfaas-fn/echo") {
      return new Response(`${req.method} ${req.headers.get("content-type")} ${await req.text()}`, {
        status: 201,
        headers: { "x-test": "yes" },
      });
    }
    return new Response("not found", { status: 404 });
  });
  await using browser = await startBrowser({
    baseURL: `http://127.0.0.1:${server.addr.port}`,
  });
  const { page } = browser;
  try {
    await page.goto("/ui/function/hello");

    // Logs: followed through /ui/logs and shown as text.
    await page.locator("#logs").filter({ hasText: evil[1] }).waitFor();
    assert.equal(await page.locator("#logs div").count(), 2);
    assert.equal(await page.locator("#logs img, #logs script").count(), 0);
    assert.match(await page.locator("#logs").innerText(), /hello-1 {2}<script>window.__pwned=2/);
    assert.match(await page.locator("#env").innerText(), /HTML=<img src=x onerror/);
    assert.equal(await page.evaluate("window.__pwned"), undefined, "no markup ran");

    // Invoke: status, headers, body and a latency.
    await page.selectOption("#invoke-method", "PUT");
    await page.fill("#invoke-path", "echo");
    await page.fill("#invoke-type", "application/json");
    await page.fill("#invoke-body-in", '{"a":1}');
    await page.click("#invoke button[type=submit]");
    await page.locator("#invoke-status").filter({ hasText: "201" }).waitFor();
    assert.equal(await page.locator("#invoke-body").innerText(), 'PUT application/json {"a":1}');
    assert.match(await page.locator("#invoke-headers").innerText(), /^x-test: yes$/m);
    assert.match(await page.locator("#invoke-latency").innerText(), /^\d+\.\d ms$/);

    // The status fragment refreshes itself.
    api.functions.get("hello.openfaas-fn")!.replicas = 4;
    await page.locator("#replicas").filter({ hasText: "4" }).waitFor();

    assert.deepEqual(browser.errors, [], "no script errors or CSP violations");
  } finally {
    await server.shutdown();
  }
});
