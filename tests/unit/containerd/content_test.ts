import assert from "node:assert/strict";
import { Content } from "../../../src/containerd/content.ts";
import type { CallOptions, DuplexCall, Rpc } from "../../../src/containerd/rpc.ts";
import { AlreadyExistsError, FailedPreconditionError } from "../../../src/errors.ts";

type Msg = Record<string, unknown>;

/**
 * An in-memory stand-in for containerd's Content.Write server: it records what the client sends
 * and answers the way containerd does (including the doubled COMMIT reply).
 */
class FakeWriteServer implements Rpc {
  sent: Msg[] = [];
  unaryCalls: Array<{ method: string; req: object }> = [];
  constructor(
    private readonly opts: { startOffset?: number; failStat?: Error; failCommit?: Error } = {},
  ) {}

  unary<Res>(_s: string, method: string, req: object, _o?: CallOptions): Promise<Res> {
    this.unaryCalls.push({ method, req });
    return Promise.resolve({} as Res);
  }
  serverStream<Res>(): AsyncGenerator<Res> {
    throw new Error("not used");
  }
  duplex<Req extends object, Res>(): DuplexCall<Req, Res> {
    const replies: Array<Msg | Error | undefined> = [];
    let offset = this.opts.startOffset ?? 0;
    return {
      send: (m) => {
        const msg = m as Msg;
        this.sent.push(msg);
        if (msg.action === "STAT") {
          replies.push(this.opts.failStat ?? { action: "STAT", offset: String(offset) });
        } else if (msg.action === "WRITE") {
          offset += (msg.data as Uint8Array).length;
          replies.push({ action: "WRITE", offset: String(offset) });
        } else if (this.opts.failCommit) {
          replies.push(this.opts.failCommit);
        } else {
          const done = { action: "COMMIT", offset: String(offset), digest: msg.expected };
          replies.push(done, done, undefined);
        }
      },
      next: () => {
        const r = replies.shift();
        return r instanceof Error ? Promise.reject(r) : Promise.resolve(r as Res | undefined);
      },
      end: () => {},
      cancel: () => {},
    };
  }
}

const blob = new Uint8Array(2.5 * 1024 * 1024).fill(7);

Deno.test("Content.write() sends STAT, 1 MiB WRITE chunks and COMMIT with labels", async () => {
  const rpc = new FakeWriteServer();
  const digest = await new Content(rpc).write("ns", {
    ref: "layer-x",
    digest: "sha256:x",
    size: blob.length,
    labels: { a: "b" },
    data: () => [blob],
  });
  assert.equal(digest, "sha256:x");
  assert.deepEqual(rpc.sent.map((m) => m.action), ["STAT", "WRITE", "WRITE", "WRITE", "COMMIT"]);
  assert.deepEqual(
    rpc.sent.filter((m) => m.action === "WRITE").map((m) => (m.data as Uint8Array).length),
    [1048576, 1048576, 524288],
  );
  assert.deepEqual(rpc.sent.at(-1)?.labels, { a: "b" });
  assert.equal(rpc.sent.at(-1)?.offset, String(blob.length));
});

Deno.test("Content.write() resumes an interrupted ingest at containerd's offset", async () => {
  const rpc = new FakeWriteServer({ startOffset: 2 * 1024 * 1024 });
  let askedFrom = -1;
  await new Content(rpc).write("ns", {
    ref: "layer-x",
    digest: "sha256:x",
    size: blob.length,
    data: (offset) => {
      askedFrom = offset;
      return [blob.subarray(offset)];
    },
  });
  assert.equal(askedFrom, 2 * 1024 * 1024);
  assert.deepEqual(rpc.sent.map((m) => m.action), ["STAT", "WRITE", "COMMIT"]);
});

Deno.test("Content.write() commits without data when containerd already has every byte", async () => {
  const rpc = new FakeWriteServer({ startOffset: blob.length });
  await new Content(rpc).write("ns", {
    ref: "r",
    digest: "sha256:x",
    size: blob.length,
    data: () => {
      throw new Error("must not read data");
    },
  });
  assert.deepEqual(rpc.sent.map((m) => m.action), ["STAT", "COMMIT"]);
});

Deno.test("Content.write() counts an existing blob as written", async () => {
  const rpc = new FakeWriteServer({ failStat: new AlreadyExistsError("exists") });
  assert.equal(
    await new Content(rpc).write("ns", { ref: "r", digest: "sha256:x", size: 1, data: () => [] }),
    "sha256:x",
  );
  assert.deepEqual(rpc.unaryCalls, [], "nothing to abort");
});

Deno.test("Content.write() aborts the ingest when the commit is refused", async () => {
  const rpc = new FakeWriteServer({ failCommit: new FailedPreconditionError("digest mismatch") });
  await assert.rejects(
    new Content(rpc).write("ns", {
      ref: "r1",
      digest: "sha256:x",
      size: 3,
      data: () => [blob.subarray(0, 3)],
    }),
    FailedPreconditionError,
  );
  assert.deepEqual(rpc.unaryCalls, [{ method: "Abort", req: { ref: "r1" } }]);
});
