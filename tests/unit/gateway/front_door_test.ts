/**
 * The gateway's front door on real sockets, with a fake router and a local upstream (Deno.serve
 * or a raw TCP server): call headers both ways, keep-alive and pipelined requests, bodies with
 * Content-Length and chunked both ways, the body limit, Expect: 100-continue, HEAD, errors (400,
 * 431, 404, 502, 503, 504) and closed connections, a slow partial head holding only its own
 * connection, a client that leaves while its call waits for a replica, and everything else handed
 * to the fallback router.
 */

import assert from "node:assert/strict";
import { NotFoundError } from "../../../src/errors.ts";
import { type FrontDoorDeps, MAX_HEAD, serveFrontDoor } from "../../../src/gateway/front_door.ts";
import { silentLogger } from "../../../src/log.ts";
import type { Route } from "../../../src/provider/manager.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function upstream(handler: (req: Request) => Response | Promise<Response>) {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    handler,
  );
  return {
    port: server.addr.port,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

interface Door {
  port: number;
  counted: Array<[string, number]>;
  released: () => number;
  fallbackSeen: string[];
  [Symbol.asyncDispose](): Promise<void>;
}

async function door(
  route: (
    name: string,
    ns: string,
    opts: { timeoutMs: number; signal?: AbortSignal },
  ) => Promise<Omit<Route, "release">>,
  opts: Partial<FrontDoorDeps> = {},
): Promise<Door> {
  const ac = new AbortController();
  const counted: Array<[string, number]> = [];
  const fallbackSeen: string[] = [];
  let released = 0;
  const server = await serveFrontDoor({
    router: {
      route: async (name, ns, o) => ({
        ...await route(name, ns, o),
        release: () => void released++,
      }),
    },
    readyTimeoutMs: 1000,
    upstreamTimeoutMs: 5000,
    maxBodyBytes: 1000,
    begin: (name, ns) => (status) => void counted.push([`${name}.${ns}`, status]),
    fallback: (req) => {
      fallbackSeen.push(`${req.method} ${new URL(req.url).pathname}`);
      return new Response(`fallback ${req.method} ${new URL(req.url).pathname}`);
    },
    log: silentLogger,
    ...opts,
  }, { hostname: "127.0.0.1", port: 0, signal: ac.signal });
  return {
    port: server.port,
    counted,
    released: () => released,
    fallbackSeen,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

const to = (port: number) => () => Promise.resolve({ ip: "127.0.0.1", port });

/** Sends `text` on a new connection and reads until the server closes it. */
async function raw(port: number, ...parts: string[]): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    for (const p of parts) await conn.write(enc.encode(p));
    return await readAll(conn);
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

async function readAll(conn: Deno.Conn): Promise<string> {
  const chunks: string[] = [];
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return chunks.join("");
    chunks.push(dec.decode(buf.subarray(0, n)));
  }
}

/** Splits a stream of responses into [status line, head, body] (Content-Length framed). */
function responses(text: string): Array<{ status: number; head: string; body: string }> {
  const out = [];
  let rest = text;
  while (rest.length > 0) {
    const end = rest.indexOf("\r\n\r\n");
    assert.ok(end > 0, `a response head in ${JSON.stringify(rest)}`);
    const head = rest.slice(0, end);
    const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? "0");
    out.push({
      status: Number(head.slice(9, 12)),
      head,
      body: rest.slice(end + 4, end + 4 + len),
    });
    rest = rest.slice(end + 4 + len);
  }
  return out;
}

Deno.test("front door: call headers both ways, hop-by-hop dropped, metrics, route released", async () => {
  let seen: Headers | undefined;
  let body = "";
  let url = "";
  await using up = upstream(async (req) => {
    seen = req.headers;
    url = req.url;
    body = await req.text();
    return new Response("answer", {
      status: 201,
      headers: { "x-fn": "1", "x-call-id": "forged", "set-cookie": "a=1" },
    });
  });
  await using d = await door(to(up.port));
  const res = await fetch(`http://127.0.0.1:${d.port}/function/f.ns/p/q?x=1&y=%20`, {
    method: "POST",
    body: "payload",
    headers: {
      "x-call-id": "call-1",
      "x-forwarded-for": "10.0.0.1",
      "keep-alive": "timeout=5",
      "x-user": "u",
    },
  });
  assert.equal(res.status, 201);
  assert.equal(await res.text(), "answer");
  assert.equal(body, "payload");
  assert.equal(new URL(url).pathname + new URL(url).search, "/p/q?x=1&y=%20");
  assert.equal(seen?.get("host"), `127.0.0.1:${up.port}`);
  assert.equal(seen?.get("x-call-id"), "call-1");
  assert.equal(seen?.get("x-user"), "u");
  assert.equal(seen?.get("x-forwarded-for"), "10.0.0.1");
  assert.equal(seen?.get("x-forwarded-host"), `127.0.0.1:${d.port}`);
  assert.equal(seen?.get("content-length"), "7");
  assert.match(seen?.get("x-start-time") ?? "", /^\d{19}$/);
  assert.equal(seen?.get("keep-alive"), null);
  assert.equal(res.headers.get("x-call-id"), "call-1");
  assert.equal(res.headers.get("x-fn"), "1");
  assert.equal(res.headers.get("set-cookie"), "a=1");
  assert.match(res.headers.get("x-duration-seconds") ?? "", /^\d+\.\d{6}$/);
  assert.deepEqual(d.counted, [["f.ns", 201]]);
  assert.equal(d.released(), 1);
  // No call ID sent: one is made.
  const second = await fetch(`http://127.0.0.1:${d.port}/function/f/`);
  await second.text();
  assert.match(seen?.get("x-call-id") ?? "", /^[0-9a-f-]{36}$/);
  assert.equal(second.headers.get("x-call-id"), seen?.get("x-call-id"));
  assert.deepEqual(d.counted[1], ["f.openfaas-fn", 201]);
});

Deno.test("front door: pipelined requests answered in order on one connection, then closed", async () => {
  await using up = upstream((req) => new Response(new URL(req.url).pathname));
  await using d = await door(to(up.port));
  const text = await raw(
    d.port,
    "GET /function/f/one HTTP/1.1\r\nHost: h\r\n\r\nGET /function/f/two HTTP/1.1\r\nHost: h\r\n\r\n",
    "HEAD /function/f/three HTTP/1.1\r\nHost: h\r\n\r\n" +
      "GET /function/f/four HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
  );
  const [one, two, three, four] = responses(text.replace(/(\/three[^]*?\r\n\r\n)/, "$1"));
  assert.equal(one.body, "/one");
  assert.equal(two.body, "/two");
  assert.equal(three.status, 200);
  assert.match(three.head, /content-length: 6/i);
  assert.match(four.head, /connection: close/i);
  assert.deepEqual(d.counted.map(([, s]) => s), [200, 200, 200, 200]);
});

Deno.test("front door: chunked bodies both ways, and Expect: 100-continue", async () => {
  await using up = upstream(async (req) => {
    const got = await req.text();
    return new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(enc.encode(`got ${got.length}:`));
          c.enqueue(enc.encode(got));
          c.close();
        },
      }),
    );
  });
  await using d = await door(to(up.port));
  const text = await raw(
    d.port,
    "POST /function/f/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    "3\r\nabc\r\n",
    "4;x=y\r\ndefg\r\n0\r\n\r\n",
  );
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /transfer-encoding: chunked/i);
  assert.match(text.replace(/\r\n[0-9a-f]+\r\n/g, ""), /got 7:abcdefg/);
  assert.match(text, /\r\n0\r\n\r\n$/);

  const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
  try {
    await conn.write(enc.encode(
      "PUT /function/f/ HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n" +
        "Connection: close\r\n\r\n",
    ));
    const buf = new Uint8Array(1024);
    const n = await conn.read(buf);
    assert.equal(dec.decode(buf.subarray(0, n ?? 0)), "HTTP/1.1 100 Continue\r\n\r\n");
    await conn.write(enc.encode("data"));
    assert.match(await readAll(conn), /got 4:data/);
  } finally {
    conn.close();
  }
});

Deno.test("front door: the body limit answers 413 and closes, by Content-Length or while chunked", async () => {
  let calls = 0;
  await using up = upstream(async (req) => {
    calls++;
    await req.text().catch(() => {});
    return new Response("ok");
  });
  await using d = await door(to(up.port));
  const declared = await raw(
    d.port,
    "POST /function/f/ HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n",
  );
  assert.match(declared, /^HTTP\/1\.1 413 /);
  assert.match(declared, /connection: close/);
  assert.match(declared, /larger than the limit of 1000 bytes/);
  assert.equal(calls, 0);
  const chunked = await raw(
    d.port,
    "POST /function/f/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
    `3e8\r\n${"x".repeat(1000)}\r\n`,
    "1\r\ny\r\n0\r\n\r\n",
  );
  assert.match(chunked, /^HTTP\/1\.1 413 /);
  assert.deepEqual(d.counted.map(([, s]) => s), [413]);
});

Deno.test("front door: malformed heads get 400 and oversize heads 431, and the connection closes", async () => {
  await using up = upstream(() => new Response("ok"));
  await using d = await door(to(up.port));
  const bad = await raw(
    d.port,
    "GET /function/f/ HTTP/1.1\r\nHost: h\r\nbroken\r\n\r\nGET / HTTP/1.1\r\n\r\n",
  );
  assert.match(bad, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(bad, /has no colon/);
  assert.equal(responses(bad).length, 1);
  const smuggle = await raw(
    d.port,
    "POST /function/f/ HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
  );
  assert.match(smuggle, /^HTTP\/1\.1 400 /);
  const huge = await raw(
    d.port,
    `GET /function/f/ HTTP/1.1\r\nHost: h\r\nX-Big: ${"a".repeat(MAX_HEAD)}\r\n\r\n`,
  );
  assert.match(huge, /^HTTP\/1\.1 431 /);
  const body = await raw(
    d.port,
    "POST /function/f/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  );
  assert.match(body, /^HTTP\/1\.1 400 /);
  assert.match(body, /malformed chunk size/);
  // A bare LF in a chunked body could frame it otherwise for the replica: refused.
  const lf = await raw(
    d.port,
    "POST /function/f/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "3\nabc\r\n0\r\n\r\n",
  );
  assert.match(lf, /^HTTP\/1\.1 400 /);
  assert.match(lf, /LF without CR/);
  assert.deepEqual(d.counted.map(([, s]) => s), [400, 400]);
});

Deno.test("front door: a slow partial head holds only its own connection", async () => {
  await using up = upstream(() => new Response("ok"));
  await using d = await door(to(up.port));
  const slow = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
  try {
    await slow.write(enc.encode("GET /function/f/ HTTP/1.1\r\nHost: h\r\nX-Slow: "));
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`http://127.0.0.1:${d.port}/function/f/`);
      assert.equal(await res.text(), "ok");
    }
    await slow.write(enc.encode("1\r\nConnection: close\r\n\r\n"));
    assert.match(await readAll(slow), /^HTTP\/1\.1 200 OK[^]*ok$/);
  } finally {
    slow.close();
  }
});

Deno.test("front door: a head not whole in time closes its connection; idle ones stay", async () => {
  await using up = upstream(() => new Response("ok"));
  await using d = await door(to(up.port), { headTimeoutMs: 200 });
  const slow = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
  const idle = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
  try {
    await slow.write(enc.encode("GET /function/f/ HTTP/1.1\r\nHo"));
    const t0 = performance.now();
    assert.equal(await readAll(slow), "");
    assert.ok(performance.now() - t0 >= 150, "not before the timeout");
    // The idle connection (no byte sent) was left open all along.
    await idle.write(
      enc.encode("GET /function/f/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
    );
    assert.match(await readAll(idle), /^HTTP\/1\.1 200 OK[^]*ok$/);
  } finally {
    slow.close();
    idle.close();
  }
});

Deno.test("front door: 404, 503, 502 naming the cause, and 504 at the upstream timeout", async () => {
  let release: () => void = () => {};
  const hung = new Promise<void>((r) => release = r);
  await using up = upstream(async () => {
    await hung;
    return new Response("late");
  });
  // A port nothing listens on.
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  await using d = await door((name) => {
    if (name === "missing") return Promise.reject(new NotFoundError("function missing not found"));
    if (name === "starting") return Promise.reject(new Error("no replica became ready"));
    if (name === "dead") return Promise.resolve({ ip: "127.0.0.1", port: deadPort });
    return Promise.resolve({ ip: "127.0.0.1", port: up.port, timeoutMs: 200 });
  });
  try {
    const get = async (name: string) => {
      const res = await fetch(`http://127.0.0.1:${d.port}/function/${name}/`);
      return { status: res.status, text: await res.text() };
    };
    assert.deepEqual(await get("missing"), { status: 404, text: "function missing not found\n" });
    const starting = await get("starting");
    assert.equal(starting.status, 503);
    assert.match(starting.text, /"starting.openfaas-fn" is not available: no replica/);
    const dead = await get("dead");
    assert.equal(dead.status, 502);
    assert.match(dead.text, /cannot reach function "dead.openfaas-fn": .*refused/i);
    const t0 = performance.now();
    const slow = await get("slow");
    assert.equal(slow.status, 504);
    assert.match(slow.text, /did not answer within 0.2s/);
    assert.ok(performance.now() - t0 < 3000);
    // A stalled upload ends at the timeout too.
    const stalled = await raw(
      d.port,
      "POST /function/slow/ HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc",
    );
    assert.match(stalled, /^HTTP\/1\.1 504 [^]*connection: close/);
    assert.deepEqual(d.counted.map(([, s]) => s), [404, 503, 502, 504, 504]);
    assert.equal(d.released(), 3);
  } finally {
    release();
  }
});

Deno.test("front door: everything else goes to the fallback router, the connection with it", async () => {
  await using up = upstream(() => new Response("fn"));
  await using d = await door(to(up.port));
  const sys = await fetch(`http://127.0.0.1:${d.port}/system/functions`);
  assert.equal(await sys.text(), "fallback GET /system/functions");
  const post = await fetch(`http://127.0.0.1:${d.port}/async-function/f`, {
    method: "POST",
    body: "x",
  });
  assert.equal(await post.text(), "fallback POST /async-function/f");
  // HTTP/1.0, an upgrade, dot segments, characters URL parsing would change: the router's.
  const old = await raw(d.port, "GET /function/f/ HTTP/1.0\r\n\r\n");
  assert.match(old, /fallback GET \/function\/f\/$/);
  const upgrade = await raw(
    d.port,
    "GET /function/f/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\nUpgrade: websocket\r\n\r\n",
  );
  assert.match(upgrade, /fallback GET \/function\/f\/$/);
  const dots = await raw(
    d.port,
    "GET /function/f/../g/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
  );
  assert.match(dots, /fallback GET \/function\/g\/$/);
  // Requests for the router and function calls mixed on one connection: each goes its own way,
  // and the function call after an API call still takes the fast path (it is counted).
  const mixed = await raw(
    d.port,
    "GET /function/f/ HTTP/1.1\r\nHost: h\r\n\r\n" +
      "POST /system/x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab" +
      "POST /async-function/g HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nz" +
      "GET /function/f/ HTTP/1.1\r\nHost: h\r\n\r\n" +
      "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
  );
  assert.deepEqual(responses(mixed).map((r) => r.body), [
    "fn",
    "fallback POST /system/x",
    "fallback POST /async-function/g",
    "fn",
    "fallback GET /healthz",
  ]);
  assert.equal(d.counted.length, 2);
  assert.deepEqual(d.fallbackSeen, [
    "GET /system/functions",
    "POST /async-function/f",
    "GET /function/f/",
    "GET /function/f/",
    "GET /function/g/",
    "POST /system/x",
    "POST /async-function/g",
    "GET /healthz",
  ]);
});

Deno.test("front door: a body framed by the connection's end is sent on chunked", async () => {
  // An HTTP/1.0-style server: no length, the body ends when it closes the connection.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      const buf = new Uint8Array(4096);
      await conn.read(buf);
      await conn.write(
        enc.encode("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"),
      );
      conn.close();
    }
  })();
  try {
    await using d = await door(to((listener.addr as Deno.NetAddr).port));
    // Sent on chunked: the client's connection stays open for the next request.
    const text = await raw(
      d.port,
      "GET /function/f/ HTTP/1.1\r\nHost: h\r\n\r\n" +
        "GET /function/f/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    const one = "transfer-encoding: chunked\r\n\r\nb\r\nuntil close\r\n0\r\n\r\n";
    assert.match(text, new RegExp(`^HTTP/1\\.1 200 OK\r\n[^]*${one}HTTP/1\\.1 200 OK\r\n`));
    assert.match(
      text,
      /transfer-encoding: chunked\r\nconnection: close\r\n\r\nb\r\nuntil close\r\n0\r\n\r\n$/,
    );
  } finally {
    listener.close();
    await serving.catch(() => {});
  }
});

Deno.test("front door: stopping closes idle connections and finishes", async () => {
  await using up = upstream(() => new Response("ok"));
  const d = await door(to(up.port));
  const idle = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
  try {
    await idle.write(enc.encode("GET /function/f/ HTTP/1.1\r\nHost: h\r\n\r\n"));
    const buf = new Uint8Array(4096);
    const n = await idle.read(buf);
    assert.match(dec.decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 200 OK[^]*ok$/);
    // Kept alive and idle now: stopping closes it rather than waiting for it.
    await d[Symbol.asyncDispose]();
    assert.equal(await readAll(idle), "");
  } finally {
    idle.close();
  }
});

/** A raw keep-alive upstream answering `answer` to each request head; its connections exposed. */
function rawUpstream(answer: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(65536);
        let acc = "";
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          acc += dec.decode(buf.subarray(0, n));
          for (let i = acc.indexOf("\r\n\r\n"); i >= 0; i = acc.indexOf("\r\n\r\n")) {
            acc = acc.slice(i + 4);
            await conn.write(enc.encode(answer)).catch(() => {});
          }
        }
        conns.delete(conn);
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    conns,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) c.close();
      await serving.catch(() => {});
    },
  };
}

Deno.test("front door: when a replica closed its idle pooled connections, the next call still answers 200", async () => {
  await using up = rawUpstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  await using d = await door(to(up.port));
  // Three calls at once leave three kept-alive connections in the pool.
  const warm = await Promise.all(
    [1, 2, 3].map(() =>
      raw(d.port, "GET /function/f/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    ),
  );
  for (const w of warm) assert.match(w, /^HTTP\/1\.1 200 OK/);
  // The replica's idle timeout closes them all.
  for (const c of up.conns) c.close();
  await new Promise((r) => setTimeout(r, 50)); // the FINs reach the pooled sockets
  const after = await raw(
    d.port,
    "GET /function/f/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
  );
  assert.match(after, /^HTTP\/1\.1 200 OK[^]*\r\n\r\nok$/);
});

Deno.test("front door: a replica's Content-Length beside Transfer-Encoding does not reach the client", async () => {
  await using up = rawUpstream(
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  );
  await using d = await door(to(up.port));
  const text = await raw(
    d.port,
    "GET /function/f/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
  );
  assert.doesNotMatch(text, /content-length/i);
  assert.match(text, /Transfer-Encoding: chunked\r\n[^]*\r\n\r\n5\r\nhello\r\n0\r\n\r\n$/);
});

Deno.test("front door: empty lines before a request line are skipped; a bad chunk to the router is 400", async () => {
  await using up = upstream(() => new Response("ok"));
  await using d = await door(to(up.port));
  const text = await raw(
    d.port,
    "POST /function/f/ HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\r\n" +
      "GET /function/f/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
  );
  assert.deepEqual(responses(text).map((r) => r.status), [200, 200]);
  const bad = await raw(
    d.port,
    "POST /other HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  );
  assert.match(bad, /^HTTP\/1\.1 400 /);
});

Deno.test("front door: a connection handed to the router ends when the router is done, though the client stays open", async () => {
  await using up = upstream(() => new Response("ok"));
  await using d = await door(to(up.port));
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
  try {
    // HTTP/1.0 is handed over whole; the client does not close its side.
    await conn.write(enc.encode("GET /h10 HTTP/1.0\r\nHost: h\r\n\r\n"));
    let gaveUp = false;
    const timer = setTimeout(() => {
      gaveUp = true;
      conn.close();
    }, 5000);
    const text = await readAll(conn); // returns on EOF: the front door closed the connection
    clearTimeout(timer);
    assert.ok(!gaveUp, "the front door kept the connection open after the router's answer");
    assert.match(text, /^HTTP\/1\.[01] 200 [^]*fallback GET \/h10$/);
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
});

Deno.test("front door: headers a Connection header names are not forwarded, either way", async () => {
  let seen: Headers | undefined;
  await using up = upstream((req) => {
    seen = req.headers;
    return new Response("ok", { headers: { connection: "x-reply-hop", "x-reply-hop": "1" } });
  });
  await using d = await door(to(up.port));
  const text = await raw(
    d.port,
    "GET /function/f/ HTTP/1.1\r\nHost: h\r\nConnection: close, x-hop\r\nX-Hop: 1\r\nX-Kept: 2\r\n\r\n",
  );
  assert.match(text, /^HTTP\/1\.1 200 OK/);
  assert.equal(seen?.get("x-hop"), null);
  assert.equal(seen?.get("x-kept"), "2");
  assert.doesNotMatch(text, /x-reply-hop/i);
});

/** A router whose function has no replica until `ready()`; it records how each wait ended. */
function waitingRoute(port: number) {
  let ready!: () => void;
  const came = new Promise<void>((r) => ready = r);
  let asked!: () => void;
  const first = new Promise<void>((r) => asked = r);
  const waits: Array<"served" | "abandoned"> = [];
  return {
    waits,
    /** Resolves once a call has asked for a replica. */
    asked: first,
    ready: () => ready(),
    route: (_name: string, _ns: string, o: { timeoutMs: number; signal?: AbortSignal }) => {
      // As the manager does when it has no ready replica: the call's signal is read.
      const signal = o.signal!;
      asked();
      return new Promise<Omit<Route, "release">>((resolve, reject) => {
        // The manager's ready timeout, so a wait nobody ends fails the test rather than hangs.
        const timer = setTimeout(() => reject(new Error("no ready replica in time")), o.timeoutMs);
        const abandoned = () => {
          clearTimeout(timer);
          waits.push("abandoned");
          reject(new Error("no ready replica"));
        };
        signal.addEventListener("abort", abandoned, { once: true });
        came.then(() => {
          if (signal.aborted) return;
          clearTimeout(timer);
          signal.removeEventListener("abort", abandoned);
          waits.push("served");
          resolve({ ip: "127.0.0.1", port });
        });
      });
    },
  };
}

async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A call that waits for a replica while its client sends `before` (then `during`, once the router
 * was asked) and closes: the wait ends, the call is counted 499, nothing reaches the function.
 */
async function leaveWhileWaiting(before: string, during?: string): Promise<void> {
  let calls = 0;
  await using up = upstream(() => {
    calls++;
    return new Response("ok");
  });
  const r = waitingRoute(up.port);
  await using d = await door(r.route);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
  await conn.write(enc.encode(before));
  await r.asked;
  if (during) {
    await conn.write(enc.encode(during));
    await new Promise((res) => setTimeout(res, 20));
  }
  conn.close();
  await until("the call to be counted", () => d.counted.length > 0);
  assert.deepEqual(r.waits, ["abandoned"]);
  assert.deepEqual(d.counted, [["f.openfaas-fn", 499]]);
  // A replica that comes now gets nothing.
  r.ready();
  await new Promise((res) => setTimeout(res, 20));
  assert.equal(calls, 0, "nothing was sent to the function");
}

Deno.test("front door: a client that leaves while its call waits for a replica ends the wait", async () => {
  await leaveWhileWaiting("GET /function/f/ HTTP/1.1\r\nHost: h\r\n\r\n");
});

Deno.test("front door: a client that stays is answered after the wait, and what it sent meanwhile too", async () => {
  await using up = upstream((req) => new Response(`ok ${new URL(req.url).pathname}`));
  const r = waitingRoute(up.port);
  await using d = await door(r.route);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
  try {
    await conn.write(enc.encode("GET /function/f/a HTTP/1.1\r\nHost: h\r\n\r\n"));
    await r.asked;
    // The next request arrives while the first still waits: read ahead, and kept for later.
    await conn.write(
      enc.encode("GET /function/f/b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
    );
    await new Promise((res) => setTimeout(res, 20));
    r.ready();
    const got = responses(await readAll(conn));
    assert.deepEqual(got.map((x) => [x.status, x.body]), [[200, "ok /a"], [200, "ok /b"]]);
    assert.deepEqual(r.waits, ["served", "served"]);
    assert.deepEqual(d.counted.map(([, s]) => s), [200, 200]);
  } finally {
    conn.close();
  }
});

Deno.test("front door: a call with a body waits too; the body sent meanwhile reaches the function whole", async () => {
  const bodies: string[] = [];
  await using up = upstream(async (req) => {
    bodies.push(await req.text());
    return new Response("ok");
  });
  const r = waitingRoute(up.port);
  await using d = await door(r.route);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
  try {
    // Half the body with the head, the rest while the call waits: read ahead and kept.
    await conn.write(
      enc.encode("POST /function/f/ HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhello"),
    );
    await r.asked;
    await conn.write(enc.encode("world"));
    await new Promise((res) => setTimeout(res, 20));
    // A chunked one next, on the same connection.
    r.ready();
    const [first] = responses(await readOne(conn));
    assert.equal(first.status, 200);
    await conn.write(enc.encode(
      "POST /function/f/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
        "3\r\nabc\r\n0\r\n\r\n",
    ));
    const rest = responses(await readAll(conn));
    assert.deepEqual(rest.map((x) => x.status), [200]);
    assert.deepEqual(bodies, ["helloworld", "abc"]);
  } finally {
    conn.close();
  }
});

Deno.test("front door: a client that leaves with its body unsent ends the wait; nothing reaches the function", async () => {
  await leaveWhileWaiting("POST /function/f/ HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhel");
});

/** Reads one Content-Length framed response (head and body) from `conn`. */
async function readOne(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buf = new Uint8Array(65536);
  for (;;) {
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const len = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? "0");
      if (text.length >= end + 4 + len) return text;
    }
    const n = await conn.read(buf);
    if (n === null) return text;
    text += dec.decode(buf.subarray(0, n));
  }
}

Deno.test("front door: a client that sends its whole body, then leaves while the call waits, is noticed", async () => {
  await leaveWhileWaiting(
    "POST /function/f/ HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhello",
    "world",
  );
});

Deno.test("front door: what arrives while a call waits never overwrites the head it forwards", async () => {
  const seen: string[] = [];
  await using up = upstream((req) => {
    seen.push(
      `${new URL(req.url).pathname} ${req.headers.get("x-first")} ${req.headers.get("x-n")}`,
    );
    return new Response("ok");
  });
  const r = waitingRoute(up.port);
  await using d = await door(r.route);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
  try {
    await conn.write(
      enc.encode("GET /function/f/one HTTP/1.1\r\nHost: h\r\nX-First: yes\r\nX-N: 1\r\n\r\n"),
    );
    await r.asked;
    // A longer pipelined request, and more than the first buffer holds, while the first waits.
    const filler = "a".repeat(20_000);
    await conn.write(enc.encode(
      `GET /function/f/two-with-a-longer-path HTTP/1.1\r\nHost: hh\r\nX-Pad: ${filler}\r\n` +
        "X-N: 2\r\nConnection: close\r\n\r\n",
    ));
    await new Promise((res) => setTimeout(res, 30));
    r.ready();
    const got = responses(await readAll(conn));
    assert.deepEqual(got.map((x) => x.status), [200, 200]);
    assert.deepEqual(seen, ["/one yes 1", "/two-with-a-longer-path null 2"]);
  } finally {
    conn.close();
  }
});
