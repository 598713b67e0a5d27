import assert from "node:assert/strict";
import { readTar } from "../../../src/images/tar_reader.ts";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { gzip, tar } from "../../fixtures/tar.ts";

const enc = new TextEncoder();

function streamOf(bytes: Uint8Array, chunk = 700): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(at, at + chunk));
      at += chunk;
    },
  });
}

async function list(bytes: Uint8Array, readBodies: boolean | ((name: string) => boolean) = true) {
  const out: Array<{ name: string; type: string; size: number; text?: string }> = [];
  for await (const e of readTar(streamOf(bytes), "test.tar")) {
    const read = typeof readBodies === "function" ? readBodies(e.name) : readBodies;
    let text: string | undefined;
    if (read) {
      let s = "";
      for await (const c of e.body) s += new TextDecoder().decode(c);
      text = s;
    }
    out.push({ name: e.name, type: e.type, size: e.size, text });
  }
  return out;
}

const long = `${"d".repeat(90)}/${"f".repeat(60)}.txt`;
const archive = tar([
  { type: "directory", name: "blobs" },
  { type: "file", name: "a.txt", content: enc.encode("hello") },
  { type: "symlink", name: "link", target: "a.txt" },
  { type: "file", name: long, content: enc.encode("x".repeat(1500)) },
  { type: "file", name: "b.txt", content: enc.encode("bye") },
]);

Deno.test("readTar() streams entries with names, types and bodies (prefix for long names)", async () => {
  assert.deepEqual(await list(archive), [
    { name: "blobs/", type: "directory", size: 0, text: "" },
    { name: "a.txt", type: "file", size: 5, text: "hello" },
    { name: "link", type: "symlink", size: 0, text: "" },
    { name: long, type: "file", size: 1500, text: "x".repeat(1500) },
    { name: "b.txt", type: "file", size: 3, text: "bye" },
  ]);
});

Deno.test("readTar() skips bodies the consumer does not read", async () => {
  const got = await list(archive, (name) => name === "b.txt");
  assert.equal(got.at(-1)?.text, "bye");
});

Deno.test("readTar() reads gzip-compressed archives", async () => {
  assert.equal((await list(gzip(archive))).length, 5);
});

Deno.test("readTar() rejects what is not a complete tar archive", async (t) => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ["empty input", new Uint8Array(0), /not a tar archive \(it is empty\)/],
    ["random bytes", crypto.getRandomValues(new Uint8Array(2048)), /not a tar archive/],
    ["cut in a body", archive.subarray(0, 2000), /truncated/],
    ["cut before the end marker", archive.subarray(0, archive.length - 1024), /truncated/],
  ];
  for (const [name, bytes, want] of cases) {
    await t.step(name, async () => {
      await assert.rejects(list(bytes), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError, `${err.name}: ${err.message}`);
        assert.match(err.message, want);
        return true;
      });
    });
  }
});
