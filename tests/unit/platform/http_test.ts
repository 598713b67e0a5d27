import assert from "node:assert/strict";
import { serve } from "../../../src/platform/http.ts";

Deno.test("serve() answers on a free port and stops when its signal aborts", async () => {
  const stop = new AbortController();
  const server = await serve(() => new Response("hi"), {
    hostname: "127.0.0.1",
    port: 0,
    signal: stop.signal,
  });
  assert.ok(server.port > 0);
  assert.equal(await (await fetch(`http://127.0.0.1:${server.port}/`)).text(), "hi");
  stop.abort();
  await server.finished;
});

Deno.test("serve() with a signal aborted before it started does not listen at all", async () => {
  const stop = new AbortController();
  stop.abort();
  const server = await serve(() => new Response("hi"), { port: 0, signal: stop.signal });
  // A server that listened anyway would never finish: its stop signal has already fired.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    server.finished.then(() => "finished"),
    new Promise<string>((r) => timer = setTimeout(() => r("still serving"), 2000)),
  ]);
  clearTimeout(timer);
  assert.equal(outcome, "finished");
  assert.equal(server.port, 0, "no port was bound");
});
