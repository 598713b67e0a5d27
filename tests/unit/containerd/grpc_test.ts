/**
 * Our gRPC-over-HTTP/2 client against Node.js's HTTP/2 server (nghttp2, a separate `node`
 * process on a unix socket): large messages both ways through flow control, a trailers-only
 * error, a deadline, cancellation, a server stream, and a reconnect after the server went away.
 */

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProtoApi } from "../../../src/containerd/proto.ts";
import { GrpcRpc } from "../../../src/containerd/rpc.ts";
import {
  CancelledError,
  NotFoundError,
  TimeoutError,
  UnavailableError,
} from "../../../src/errors.ts";

const PROTO = `
syntax = "proto3";
package t;
message Blob { bytes data = 1; }
service S {
  rpc Echo(Blob) returns (Blob);
  rpc Fail(Blob) returns (Blob);
  rpc Stall(Blob) returns (Blob);
  rpc Three(Blob) returns (stream Blob);
  rpc Bye(Blob) returns (Blob);
}
`;

// The server: Echo answers with the request's message, Fail with a trailers-only NOT_FOUND,
// Stall never, Three with three messages, Bye like Echo and then with GOAWAY; the first Echo in
// namespace "refuse-once" gets a GOAWAY that leaves it unprocessed. The default windows (64 KiB)
// make big messages wait.
const SERVER = `
import http2 from "node:http2";
const server = http2.createServer();
let refused = false;
server.on("stream", (stream, headers) => {
  const chunks = [];
  stream.on("data", (c) => chunks.push(c));
  stream.on("error", () => {});
  stream.on("end", () => {
    const body = Buffer.concat(chunks);
    const path = headers[":path"];
    if (path === "/t.S/Fail") {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "5",
        "grpc-message": "no%20such%20thing: " + headers["containerd-namespace"] }, { endStream: true });
      return;
    }
    if (path === "/t.S/Stall") return;
    const session = stream.session;
    if (path === "/t.S/Echo" && headers["containerd-namespace"] === "refuse-once" && !refused) {
      // A GOAWAY that says this stream was never looked at.
      refused = true;
      session.goaway(0, stream.id - 2);
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (path === "/t.S/Bye") stream.on("close", () => session.goaway());
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    if (path === "/t.S/Three") stream.end(Buffer.concat([body, body, body]));
    else stream.end(body);
  });
});
server.listen(process.argv[2], () => console.log("ready"));
`;

async function startServer(dir: string, socket: string) {
  const script = join(dir, "server.mjs");
  await writeFile(script, SERVER);
  await rm(socket, { force: true });
  const child = new Deno.Command("node", {
    args: [script, socket],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /ready/);
  return {
    stop: async () => {
      child.kill("SIGKILL");
      await child.status;
      reader.releaseLock();
      await child.stdout.cancel();
    },
  };
}

Deno.test("gRPC client against Node.js's HTTP/2 server", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "faasd-grpc-"));
  const socket = join(dir, "s.sock");
  let server = await startServer(dir, socket);
  const rpc = new GrpcRpc(socket, loadProtoApi({ "t.proto": PROTO }));
  try {
    await t.step("a 5 MB message each way passes the 64 KiB windows", async () => {
      const data = new Uint8Array(5 * 1024 * 1024).map((_, i) => i % 251);
      const reply = await rpc.unary<{ data: Uint8Array }>("t.S", "Echo", { data });
      assert.equal(reply.data.length, data.length);
      assert.ok(reply.data.every((b, i) => b === data[i]));
    });

    await t.step("a trailers-only error becomes our class, message decoded", async () => {
      await assert.rejects(
        rpc.unary("t.S", "Fail", {}, { namespace: "ns1" }),
        (err: Error) => err instanceof NotFoundError && /no such thing: ns1/.test(err.message),
      );
    });

    await t.step("a deadline ends a call the server never answers", async () => {
      const t0 = performance.now();
      await assert.rejects(rpc.unary("t.S", "Stall", {}, { timeoutMs: 200 }), TimeoutError);
      assert.ok(performance.now() - t0 < 5000);
    });

    await t.step("an abort cancels a call in flight", async () => {
      const ac = new AbortController();
      const call = rpc.unary("t.S", "Stall", {}, { signal: ac.signal });
      setTimeout(() => ac.abort(new Error("caller gave up")), 50);
      await assert.rejects(call, CancelledError);
    });

    await t.step("a server stream yields each message, then ends", async () => {
      const got: number[] = [];
      for await (
        const m of rpc.serverStream<{ data: Uint8Array }>("t.S", "Three", {
          data: new Uint8Array([7, 8]),
        })
      ) got.push(m.data.length);
      assert.deepEqual(got, [2, 2, 2]);
    });

    await t.step("after a GOAWAY the next call opens a new connection", async () => {
      const one = new Uint8Array([1]);
      await rpc.unary("t.S", "Bye", { data: one });
      for (let i = 0; i < 3; i++) {
        const reply = await rpc.unary<{ data: Uint8Array }>("t.S", "Echo", { data: one });
        assert.deepEqual([...reply.data], [1]);
      }
    });

    await t.step("a call a GOAWAY refused unseen is sent again on a new connection", async () => {
      const reply = await rpc.unary<{ data: Uint8Array }>("t.S", "Echo", {
        data: new Uint8Array([2]),
      }, { namespace: "refuse-once" });
      assert.deepEqual([...reply.data], [2]);
    });

    await t.step("a header block larger than a frame goes out in CONTINUATION frames", async () => {
      await assert.rejects(
        rpc.unary("t.S", "Fail", {}, { namespace: "n".repeat(40_000) }),
        (err: Error) => err instanceof NotFoundError && err.message.includes("n".repeat(1000)),
      );
    });

    await t.step(
      "calls fail with UNAVAILABLE while the server is gone, and work once it is back",
      async () => {
        await server.stop();
        await assert.rejects(rpc.unary("t.S", "Echo", {}), UnavailableError);
        server = await startServer(dir, socket);
        const reply = await rpc.unary<{ data: Uint8Array }>("t.S", "Echo", {
          data: new Uint8Array([1]),
        });
        assert.deepEqual([...reply.data], [1]);
      },
    );
  } finally {
    await rpc.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
