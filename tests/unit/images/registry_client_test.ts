/**
 * The registry client's auth and redirect handling against an in-memory registry (a fake fetch).
 * The real registry in tests/e2e only speaks Basic auth; the token flows are checked here.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { UnauthenticatedError } from "../../../src/errors.ts";
import { silentLogger } from "../../../src/log.ts";
import { RegistryClient, type RegistryCredentials } from "../../../src/images/registry_client.ts";

const blob = new TextEncoder().encode("layer bytes");
const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;
const desc = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest, size: blob.length };
const endpoint = { url: "https://reg.example", host: "reg.example" };

interface Seen {
  method: string;
  url: string;
  authorization: string | null;
  body?: string;
}

/** A registry at reg.example whose token service at auth.example issues "tok-<n>". */
function fakeRegistry(opts: { acceptToken?: (t: string) => boolean } = {}) {
  const seen: Seen[] = [];
  let issued = 0;
  const fetcher = ((input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    const headers = new Headers(init?.headers);
    seen.push({
      method: init?.method ?? "GET",
      url: url.toString(),
      authorization: headers.get("authorization"),
      body: typeof init?.body === "string" ? init.body : undefined,
    });
    if (url.host === "auth.example") {
      issued++;
      return Promise.resolve(Response.json({ token: `tok-${issued}`, expires_in: 300 }));
    }
    if (url.host === "cdn.example") return Promise.resolve(new Response(blob));
    const auth = headers.get("authorization") ?? "";
    const token = auth.replace(/^Bearer /, "");
    if (!auth.startsWith("Bearer ") || !(opts.acceptToken?.(token) ?? true)) {
      return Promise.resolve(
        new Response("", {
          status: 401,
          headers: {
            "www-authenticate":
              `Bearer realm="https://auth.example/token",service="reg.example",scope="repository:app:pull"`,
          },
        }),
      );
    }
    return Promise.resolve(
      new Response(null, { status: 307, headers: { location: "https://cdn.example/blob" } }),
    );
  }) as typeof fetch;
  return { seen, fetcher };
}

function client(fetcher: typeof fetch, creds?: RegistryCredentials) {
  return new RegistryClient({
    log: silentLogger,
    credentials: { lookup: () => creds, describe: () => "/data/.docker/config.json" },
    fetchFor: () => fetcher,
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

Deno.test("anonymous bearer flow: challenge, token for the repository scope, retry, redirect", async () => {
  const reg = fakeRegistry();
  const repo = client(reg.fetcher).repository(endpoint, "app");
  assert.equal(await readAll(await repo.fetchBlob(desc)), "layer bytes");
  const [first, token, retry, cdn] = reg.seen;
  assert.equal(first.authorization, null);
  assert.equal(
    token.url,
    "https://auth.example/token?service=reg.example&scope=repository%3Aapp%3Apull",
  );
  assert.equal(token.authorization, null, "no credentials, no Basic header for the token");
  assert.equal(retry.authorization, "Bearer tok-1");
  assert.equal(cdn.url, "https://cdn.example/blob");
  assert.equal(cdn.authorization, null, "the registry's token never goes to blob storage");
});

Deno.test("the token is cached and sent up front on the next request", async () => {
  const reg = fakeRegistry();
  const repo = client(reg.fetcher).repository(endpoint, "app");
  await readAll(await repo.fetchBlob(desc));
  const before = reg.seen.length;
  await readAll(await repo.fetchBlob(desc));
  const again = reg.seen.slice(before);
  assert.deepEqual(again.map((s) => [s.url, s.authorization]), [
    [`https://reg.example/v2/app/blobs/${digest}`, "Bearer tok-1"],
    ["https://cdn.example/blob", null],
  ]);
});

Deno.test("credentials from config.json go to the token service as Basic auth", async () => {
  const reg = fakeRegistry();
  const repo = client(reg.fetcher, { username: "alice", password: "pw:with:colons" })
    .repository(endpoint, "app");
  await readAll(await repo.fetchBlob(desc));
  const token = reg.seen.find((s) => s.url.startsWith("https://auth.example"))!;
  assert.equal(token.authorization, `Basic ${btoa("alice:pw:with:colons")}`);
});

Deno.test("an identity token is exchanged with an OAuth refresh_token POST", async () => {
  const reg = fakeRegistry();
  const repo = client(reg.fetcher, { identityToken: "refresh-me" }).repository(endpoint, "app");
  await readAll(await repo.fetchBlob(desc));
  const token = reg.seen.find((s) => s.url.startsWith("https://auth.example"))!;
  assert.equal(token.method, "POST");
  const form = new URLSearchParams(token.body);
  assert.equal(form.get("grant_type"), "refresh_token");
  assert.equal(form.get("refresh_token"), "refresh-me");
  assert.equal(form.get("scope"), "repository:app:pull");
});

Deno.test("a registry that refuses the token names itself and the credentials file", async () => {
  const reg = fakeRegistry({ acceptToken: () => false });
  const repo = client(reg.fetcher, { username: "bob", password: "x" }).repository(endpoint, "app");
  await assert.rejects(repo.fetchBlob(desc), (err: Error) => {
    assert.ok(err instanceof UnauthenticatedError, err.message);
    assert.match(
      err.message,
      /registry reg\.example refused the credentials from \/data\/\.docker\/config\.json/,
    );
    return true;
  });
});
