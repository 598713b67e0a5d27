/**
 * End-to-end: the web UI of `faasd up` in a real headless chromium, against the real containerd,
 * CNI and a real registry — deploy from the form, invoke from the page, follow logs, scale, see
 * the provider's error for a bad image, delete.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { Containerd } from "../../src/containerd/client.ts";
import { api, createNamespace, finishAppliance, startAppliance } from "../fixtures/appliance.ts";
import { startBrowser } from "../fixtures/browser.ts";
import { functionImage } from "../fixtures/function_image.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";

const SOCKET = "/run/containerd/containerd.sock";

/** The text of a function's row in the list, or undefined when it is not listed. */
async function row(page: Page, name: string): Promise<string | undefined> {
  const r = page.locator(`tr[data-function="${name}"]`);
  return await r.count() > 0 ? (await r.innerText()).replace(/\s+/g, " ") : undefined;
}

Deno.test("ui: deploy, invoke, logs, scale, a bad image and delete in a real browser", async (t) => {
  await using registry = await startRegistry();
  await pushImage(registry, "fn/hello", "1", functionImage("v1"));
  const client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const ns = `fui-${randomBytes(3).toString("hex")}`;
  const app = await startAppliance();
  try {
    await createNamespace(app, ns);
    const secret = await api(app, "POST", "/system/secrets", {
      name: "api-key",
      namespace: ns,
      value: "s3cr3t",
    });
    assert.equal(secret.status, 201, secret.text);

    await t.step("without credentials /ui/ is 401; a cross-site post is refused", async () => {
      for (const path of ["/ui/", "/ui", "/ui/app.js"]) {
        const res = await fetch(`${app.url}${path}`);
        assert.equal(res.status, 401, path);
        assert.equal(res.headers.get("www-authenticate"), 'Basic realm="Restricted"');
        await res.body?.cancel();
      }
      const forged = await fetch(`${app.url}/ui/deploy`, {
        method: "POST",
        headers: {
          authorization: app.auth,
          origin: "http://evil.example",
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({
          image: `${registry.host}/fn/hello:1`,
          name: "forged",
          namespace: ns,
        }),
      });
      assert.equal(forged.status, 403);
      await forged.body?.cancel();
      assert.deepEqual((await api(app, "GET", `/system/functions?namespace=${ns}`)).json(), []);
    });

    const password = (await readFile(join(app.dataDir, "secrets/basic-auth-password"), "utf8"))
      .trim();
    await using browser = await startBrowser({
      baseURL: app.url,
      credentials: { username: "admin", password },
    });
    const { page } = browser;

    await t.step("a function deployed from the form is listed and becomes Ready", async () => {
      await page.goto(`/ui/deploy?namespace=${ns}`);
      await page.fill("#image", `${registry.host}/fn/hello:1`);
      await page.fill("#name", "hello");
      await page.fill("#env", "GREETING=<script>window.__pwned=1</script>\nMODE=ui");
      await page.fill("#labels", "team=blue");
      await page.fill("#annotations", "topic=demo");
      await page.selectOption("#secrets", ["api-key"]);
      await page.click("#deploy button[type=submit]");
      await page.waitForURL(/\/ui\/\?namespace=.*&done=deployed$/);
      assert.match(await page.locator(".flash").innerText(), /Function deployed/);
      assert.ok(await row(page, "hello"), "listed");
      // The list refreshes itself until the replica is ready.
      await page.locator('tr[data-function="hello"] .status').filter({ hasText: /^Ready$/ })
        .waitFor({ timeout: 60_000 });
      const listed = (await row(page, "hello"))!;
      assert.match(listed, /1\/1/);
      assert.ok(listed.includes(`${registry.host}/fn/hello:1`), listed);

      const [status] = (await api(app, "GET", `/system/functions?namespace=${ns}`)).json();
      assert.deepEqual(status.envVars, {
        GREETING: "<script>window.__pwned=1</script>",
        MODE: "ui",
      });
      assert.deepEqual(status.secrets, ["api-key"]);
      assert.equal(status.labels.team, "blue");
      assert.deepEqual(status.annotations, { topic: "demo" });
    });

    await t.step("the function's page shows an env value with markup as text", async () => {
      await page.click('tr[data-function="hello"] a');
      await page.waitForURL(/\/ui\/function\/hello\?namespace=/);
      assert.match(
        await page.locator("#env").innerText(),
        /^GREETING=<script>window.__pwned=1<\/script>$/m,
      );
      assert.equal(await page.evaluate("window.__pwned"), undefined);
    });

    await t.step("invoking from the page shows status, headers, latency and body", async () => {
      await page.selectOption("#invoke-method", "POST");
      await page.fill("#invoke-path", "/cgi-bin/echo");
      await page.fill("#invoke-body-in", "hello from the browser");
      await page.click("#invoke button[type=submit]");
      await page.locator("#invoke-status").filter({ hasText: /^200/ }).waitFor();
      assert.equal(await page.locator("#invoke-body").innerText(), "hello from the browser");
      assert.match(await page.locator("#invoke-latency").innerText(), /^\d+\.\d ms$/);
      assert.match(await page.locator("#invoke-headers").innerText(), /^x-call-id: \S+$/m);
    });

    await t.step("the logs panel shows a line the function wrote", async () => {
      const marker = `m-${randomBytes(4).toString("hex")}`;
      await page.selectOption("#invoke-method", "GET");
      await page.fill("#invoke-path", `/cgi-bin/log?${marker}`);
      await page.click("#invoke button[type=submit]");
      await page.locator("#invoke-body").filter({ hasText: "logged" }).waitFor();
      await page.locator("#logs").filter({ hasText: `log line ${marker}` })
        .waitFor({ timeout: 15_000 });
      assert.equal(await page.locator("#logs-state").innerText(), "following");
    });

    await t.step("scaling to 2 shows 2 replicas, both become available", async () => {
      await page.fill("#scale-replicas", "2");
      await page.click("form[action='/ui/scale'] button[type=submit]");
      await page.waitForURL(/done=scaled/);
      assert.equal(await page.locator("#replicas").innerText(), "2");
      await page.locator("#available").filter({ hasText: /^2$/ }).waitFor({ timeout: 60_000 });
      const one = (await api(app, "GET", `/system/function/hello?namespace=${ns}`)).json();
      assert.equal(one.replicas, 2);
    });

    await t.step(
      "a bad image shows the provider's error in the page and creates nothing",
      async () => {
        const image = "Not A Valid/Image!";
        await page.goto(`/ui/deploy?namespace=${ns}`);
        await page.fill("#image", image);
        await page.fill("#name", "broken");
        const [res] = await Promise.all([
          page.waitForResponse((r) =>
            r.url().endsWith("/ui/deploy") && r.request().method() === "POST"
          ),
          page.click("#deploy button[type=submit]"),
        ]);
        assert.equal(res.status(), 400);
        // The same deployment sent to the API directly gets the same message.
        const direct = await api(app, "POST", "/system/functions", {
          service: "broken",
          image,
          namespace: ns,
        });
        assert.equal(direct.status, 400);
        assert.equal(await page.locator("#error").innerText(), direct.text.trim());
        assert.match(direct.text, /image reference "Not A Valid\/Image!"/);
        assert.equal(await page.inputValue("#image"), image, "what was typed is kept");
        const names = (await api(app, "GET", `/system/functions?namespace=${ns}`)).json()
          .map((f: { name: string }) => f.name);
        assert.deepEqual(names, ["hello"]);
      },
    );

    await t.step(
      "delete, once confirmed, removes the function from the list and the API",
      async () => {
        await page.goto(`/ui/function/hello?namespace=${ns}`);
        await page.click("#delete");
        await page.waitForURL(/\/ui\/delete\?/);
        assert.ok(
          (await api(app, "GET", `/system/function/hello?namespace=${ns}`)).status === 200,
          "asking deletes nothing",
        );
        await page.click("#confirm-delete");
        await page.waitForURL(/done=deleted/);
        assert.match(await page.locator(".flash").innerText(), /Function deleted/);
        assert.equal(await row(page, "hello"), undefined);
        assert.ok(await page.locator("#no-functions").isVisible());
        assert.deepEqual((await api(app, "GET", `/system/functions?namespace=${ns}`)).json(), []);
      },
    );

    assert.deepEqual(browser.errors, [], "no script errors or CSP violations in the pages");
  } catch (err) {
    console.error(app.log());
    throw err;
  } finally {
    await finishAppliance(app, client, { namespace: ns, hadDefaultNamespace: hadDefault });
  }
});
