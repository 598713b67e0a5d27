/**
 * The proxy's HTTP/1.1 client against real local servers: Content-Length bodies small and
 * large, chunked bodies, close-delimited bodies, kept-alive connections reused, and a pooled
 * connection the server closed replaced by a fresh one.
 */

import assert from "node:assert/strict";
import { BadGatewayError } from "../../../src/errors.ts";
import { Http1Client, type Http1Response } from "../../../src/http1/client.ts";

async function text(body: Http1Response["body"]): Promise<string> {
  return await new Response(body).text();
}

/** A raw TCP server answering each connection's requests with `answers`, then closing. */
function rawServer(answers: string[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const served = (async () => {
    for await (const conn of listener) {
      connections++;
      (async () => {
        const buf = new Uint8Array(4096);
        for (const answer of answers) {
          if ((await conn.read(buf)) === null) break;
          await conn.write(new TextEncoder().encode(answer));
        }
        conn.close();
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    connections: () => connections,
    close: async () => {
      listener.close();
      await served;
    },
  };
}

Deno.test("http1: bodies by length (small, large), chunked; connections kept alive", async () => {
  const big = "x".repeat(200_000);
  const ac = new AbortController();
  const remotes = new Set<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req, info) => {
      remotes.add(info.remoteAddr.port);
      const path = new URL(req.url).pathname;
      if (path === "/big") return new Response(big);
      if (path === "/chunked") {
        return new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode("one,"));
              c.enqueue(new TextEncoder().encode("two"));
              c.close();
            },
          }),
        );
      }
      if (path === "/empty") return new Response(null, { status: 204 });
      return new Response(`hello ${req.headers.get("x-a")}`, { headers: { "x-b": "2" } });
    },
  );
  const client = new Http1Client();
  const signal = new AbortController().signal;
  try {
    const get = (path: string) =>
      client.request("127.0.0.1", server.addr.port, "GET", path, [["x-a", "1"]], signal);
    const small = await get("/");
    assert.equal(small.status, 200);
    assert.equal(await text(small.body), "hello 1");
    assert.ok(small.headers.some(([k, v]) => k === "x-b" && v === "2"));
    assert.equal(await text((await get("/big")).body), big);
    assert.equal(await text((await get("/chunked")).body), "one,two");
    const empty = await get("/empty");
    assert.equal(empty.status, 204);
    assert.equal(empty.body, null);
    assert.equal(await text((await get("/")).body), "hello 1");
    assert.equal(remotes.size, 1, "every request went over the one kept-alive connection");
  } finally {
    client.forget("127.0.0.1", server.addr.port);
    ac.abort();
    await server.finished;
  }
});

Deno.test("http1: a pooled connection the server closed is replaced; close-delimited body with LF-only header lines", async () => {
  const server = rawServer([
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
  ]);
  const client = new Http1Client();
  const signal = new AbortController().signal;
  try {
    const a = await client.request("127.0.0.1", server.port, "GET", "/", [], signal);
    assert.equal(await text(a.body), "first");
    // The server closed that connection after its answer; the client notices and reconnects.
    await new Promise((r) => setTimeout(r, 20));
    const b = await client.request("127.0.0.1", server.port, "GET", "/", [], signal);
    assert.equal(await text(b.body), "first");
    assert.equal(server.connections(), 2);
  } finally {
    client.forget("127.0.0.1", server.port);
    await server.close();
  }
  // As busybox httpd answers for a CGI script: its header lines end in a bare LF.
  const closing = rawServer(["HTTP/1.0 200 OK\r\nContent-Type: text/plain\n\nuntil the end"]);
  try {
    const c = await client.request("127.0.0.1", closing.port, "GET", "/", [], signal);
    assert.deepEqual(c.headers, [["content-type", "text/plain"]]);
    assert.equal(await text(c.body), "until the end");
  } finally {
    client.forget("127.0.0.1", closing.port);
    await closing.close();
  }
});

Deno.test("http1: an interim 1xx answer is skipped; a malformed answer is a BadGatewayError", async () => {
  const server = rawServer([
    "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
  ]);
  const bad = rawServer(["garbage\r\n\r\n"]);
  const client = new Http1Client();
  const signal = new AbortController().signal;
  try {
    const r = await client.request("127.0.0.1", server.port, "GET", "/", [], signal);
    assert.equal(r.status, 200);
    assert.equal(await text(r.body), "ok");
    await assert.rejects(
      client.request("127.0.0.1", bad.port, "GET", "/", [], signal),
      (err: Error) =>
        err instanceof BadGatewayError && /no HTTP\/1\.x status line/.test(err.message),
    );
  } finally {
    client.forget("127.0.0.1", server.port);
    await server.close();
    await bad.close();
  }
});

Deno.test("http1: a connection is not reused after HEAD (a body sent anyway is never read as the next answer)", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const enc = new TextEncoder();
  let connections = 0;
  const served = (async () => {
    for await (const conn of listener) {
      connections++;
      (async () => {
        const buf = new Uint8Array(4096);
        while (true) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          const head = new TextDecoder().decode(buf.subarray(0, n));
          if (head.startsWith("HEAD")) {
            // As busybox's CGI does: the head, and a moment later a body HEAD must not have.
            await conn.write(enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"));
            await new Promise((r) => setTimeout(r, 20));
            await conn.write(enc.encode("bogus")).catch(() => {});
          } else {
            await conn.write(enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
          }
        }
        conn.close();
      })();
    }
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  const client = new Http1Client();
  try {
    const signal = new AbortController().signal;
    const head = await client.request("127.0.0.1", port, "HEAD", "/", [], signal);
    assert.equal(head.status, 200);
    assert.equal(head.body, null);
    await new Promise((r) => setTimeout(r, 50)); // the bogus body has arrived by now
    const get = await client.request("127.0.0.1", port, "GET", "/", [], signal);
    assert.equal(await text(get.body), "ok");
    assert.equal(connections, 2);
  } finally {
    client.forget("127.0.0.1", port);
    listener.close();
    await served;
  }
});
