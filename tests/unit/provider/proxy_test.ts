/**
 * The function proxy against a real local upstream (Deno.serve on a free port) and a fake
 * router: the call headers both ways, hop-by-hop headers dropped, bodies streamed, 502 when
 * the upstream cannot be reached, 504 when it does not answer in time.
 */

import assert from "node:assert/strict";
import { BadGatewayError, TimeoutError } from "../../../src/errors.ts";
import { createProxy } from "../../../src/provider/proxy.ts";

function upstream(handler: (req: Request) => Response | Promise<Response>) {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    handler,
  );
  return {
    port: server.addr.port,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

function router(port: number) {
  let released = 0;
  return {
    released: () => released,
    route: () => Promise.resolve({ ip: "127.0.0.1", port, release: () => void released++ }),
  };
}

Deno.test("proxy: call headers added both ways, hop-by-hop dropped, body streamed", async () => {
  let seen: Headers | undefined;
  let body = "";
  const up = upstream(async (req) => {
    seen = req.headers;
    body = await req.text();
    return new Response("answer", {
      status: 201,
      headers: { "x-fn": "1", "x-call-id": "forged", "set-cookie": "a=1" },
    });
  });
  try {
    const r = router(up.port);
    const proxy = createProxy(r, { readyTimeoutMs: 1000, upstreamTimeoutMs: 5000 });
    const req = new Request("http://gw.local/function/f/p?q=1", {
      method: "POST",
      body: "payload",
      headers: {
        host: "gw.local",
        "x-call-id": "call-1",
        "x-forwarded-for": "10.0.0.1",
        "keep-alive": "timeout=5",
        "x-user": "u",
      },
    });
    const res = await proxy(req, "f", "ns", "/p?q=1", "10.0.0.2");
    assert.equal(res.status, 201);
    assert.equal(await res.text(), "answer");
    assert.equal(body, "payload");
    assert.equal(seen?.get("x-call-id"), "call-1");
    assert.equal(seen?.get("x-user"), "u");
    assert.equal(seen?.get("x-forwarded-for"), "10.0.0.1, 10.0.0.2");
    assert.equal(seen?.get("x-forwarded-host"), "gw.local");
    assert.match(seen?.get("x-start-time") ?? "", /^\d{19}$/);
    assert.equal(seen?.get("keep-alive"), null);
    assert.equal(res.headers.get("x-call-id"), "call-1");
    assert.equal(res.headers.get("x-fn"), "1");
    assert.equal(res.headers.get("set-cookie"), "a=1");
    assert.match(res.headers.get("x-duration-seconds") ?? "", /^\d+\.\d{6}$/);
    assert.equal(r.released(), 1);
  } finally {
    await up.close();
  }
});

Deno.test("proxy: a call ID is made when the client sends none", async () => {
  let seen: string | null = null;
  const up = upstream((req) => {
    seen = req.headers.get("x-call-id");
    return new Response("ok");
  });
  try {
    const proxy = createProxy(router(up.port), { readyTimeoutMs: 1000, upstreamTimeoutMs: 5000 });
    const res = await proxy(new Request("http://gw.local/function/f/"), "f", "ns", "/");
    await res.text();
    assert.match(String(seen), /^[0-9a-f-]{36}$/);
    assert.equal(res.headers.get("x-call-id"), seen);
  } finally {
    await up.close();
  }
});

Deno.test("proxy: 504 when the function sends no headers in time, 502 when unreachable", async () => {
  let unblock!: () => void;
  const blocked = new Promise<void>((r) => unblock = r);
  const up = upstream(async () => {
    await blocked;
    return new Response("late");
  });
  try {
    const r = router(up.port);
    const proxy = createProxy(r, { readyTimeoutMs: 1000, upstreamTimeoutMs: 100 });
    const t0 = performance.now();
    await assert.rejects(
      proxy(new Request("http://gw.local/function/f/"), "f", "ns", "/"),
      TimeoutError,
    );
    const took = performance.now() - t0;
    assert.ok(took >= 90 && took < 2000, `timed out after ${took} ms`);
    assert.equal(r.released(), 1);
  } finally {
    unblock();
    await up.close();
  }
  // The port is closed now: nothing listens there.
  const proxy = createProxy(router(up.port), { readyTimeoutMs: 1000, upstreamTimeoutMs: 5000 });
  await assert.rejects(
    proxy(new Request("http://gw.local/function/f/"), "f", "ns", "/"),
    BadGatewayError,
  );
});

Deno.test("proxy: a function's own timeout wins, and a shorter one is not held up by longer ones", async () => {
  const releases: (() => void)[] = [];
  const up = upstream(() =>
    new Promise<Response>((r) => releases.push(() => r(new Response("x"))))
  );
  try {
    // deno-lint-ignore prefer-const -- reassigned below, after the closure captured it (a lint false positive)
    let timeoutMs: number | undefined;
    const proxy = createProxy({
      route: () =>
        Promise.resolve({ ip: "127.0.0.1", port: up.port, timeoutMs, release: () => {} }),
    }, { readyTimeoutMs: 1000, upstreamTimeoutMs: 5000 });
    // A request under the gateway's 5 s first, then one whose function allows 100 ms.
    const long = proxy(new Request("http://gw.local/function/slow/"), "slow", "ns", "/");
    long.catch(() => {});
    timeoutMs = 100;
    const t0 = performance.now();
    await assert.rejects(
      proxy(new Request("http://gw.local/function/quick/"), "quick", "ns", "/"),
      (err: Error) => err instanceof TimeoutError && /within 0.1s/.test(err.message),
    );
    const took = performance.now() - t0;
    assert.ok(took >= 90 && took < 1500, `the 100 ms timeout fired after ${took} ms`);
    for (const release of releases) release();
    assert.equal((await long).status, 200, "the longer request was not cut short");
  } finally {
    for (const release of releases) release();
    await up.close();
  }
});

Deno.test("proxy: an upload that stalls ends in 504 at the upstream timeout", async () => {
  const up = upstream(async (req) => new Response(await req.text()));
  let stall!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      stall = c;
      c.enqueue(new TextEncoder().encode("first bytes, then nothing"));
    },
  });
  try {
    const proxy = createProxy(router(up.port), { readyTimeoutMs: 1000, upstreamTimeoutMs: 150 });
    const req = new Request("http://gw.local/function/f/", {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    await assert.rejects(proxy(req, "f", "ns", "/"), TimeoutError);
  } finally {
    stall.close();
    await up.close();
  }
});

Deno.test("proxy: headers a Connection header lists are dropped both ways", async () => {
  // A raw upstream: it records the request head and answers with a Connection header of its own.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let requestHead = "";
  const served = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(8192);
    while (!requestHead.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      requestHead += new TextDecoder().decode(buf.subarray(0, n));
    }
    await conn.write(new TextEncoder().encode(
      "HTTP/1.1 200 OK\r\nconnection: x-up-private\r\nx-up-private: 1\r\nx-up-kept: 1\r\n" +
        "content-length: 2\r\n\r\nok",
    ));
    conn.close();
  })();
  try {
    const proxy = createProxy(router((listener.addr as Deno.NetAddr).port), {
      readyTimeoutMs: 1000,
      upstreamTimeoutMs: 5000,
    });
    const req = new Request("http://gw.local/function/f/", {
      headers: { connection: "x-private", "x-private": "secret", "x-kept": "1" },
    });
    const res = await proxy(req, "f", "ns", "/");
    assert.equal(await res.text(), "ok");
    await served;
    const sent = requestHead.toLowerCase();
    assert.match(sent, /\r\nx-kept: 1\r\n/);
    assert.doesNotMatch(sent, /x-private/);
    assert.equal(res.headers.get("x-up-kept"), "1");
    assert.equal(res.headers.get("x-up-private"), null);
  } finally {
    listener.close();
  }
});

Deno.test("proxy behind Deno.serve: a client that leaves while its call waits for a replica ends the wait", async () => {
  // The router waits for a replica until the request's signal says the client has gone (the
  // provider port, and what the gateway's front door hands over whole: HTTP/1.0, upgrades).
  const waits: { ended: Promise<void> }[] = [];
  const waiting = {
    route: (_name: string, _ns: string, opts: { signal?: AbortSignal }) => {
      let ended!: () => void;
      waits.push({ ended: new Promise<void>((resolve) => ended = resolve) });
      return new Promise<never>((_, reject) => {
        opts.signal?.addEventListener("abort", () => {
          ended();
          reject(new Error("the client left"));
        }, { once: true });
      });
    },
  };
  const proxy = createProxy(waiting, { readyTimeoutMs: 60_000, upstreamTimeoutMs: 60_000 });
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => proxy(req, "f", "ns", "/").catch((err) => new Response(err.message, { status: 503 })),
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    for (const [version, leave] of [["1.1", "close"], ["1.0", "closeWrite"]] as const) {
      const before = waits.length;
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      await conn.write(
        new TextEncoder().encode(`GET /function/f HTTP/${version}\r\nHost: gw\r\n\r\n`),
      );
      // The call is waiting once the router has been asked.
      while (waits.length === before) await new Promise((r) => setTimeout(r, 5));
      if (leave === "close") conn.close();
      else await conn.closeWrite();
      const outcome = await Promise.race([
        waits[before].ended.then(() => "ended"),
        new Promise((r) => timer = setTimeout(() => r("still waiting after 5 s"), 5000)),
      ]);
      clearTimeout(timer);
      assert.equal(outcome, "ended", `HTTP/${version}, client ${leave}`);
      if (leave === "closeWrite") conn.close();
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
    await server.finished;
  }
});
