import assert from "node:assert/strict";
import {
  createNetns,
  deleteNetns,
  netnsPath,
  parseNetnsList,
  pruneNetns,
} from "../../../src/cni/netns.ts";
import { CommandError } from "../../../src/cni/errors.ts";
import { AlreadyExistsError, InvalidArgumentError } from "../../../src/errors.ts";
import { fakeExec } from "./fake_exec.ts";

Deno.test("parseNetnsList() reads names with and without ids", () => {
  assert.deepEqual(parseNetnsList("faasd-b (id: 1)\nfaasd-a\n\n"), ["faasd-a", "faasd-b"]);
  assert.deepEqual(parseNetnsList(""), []);
});

Deno.test("netnsPath() validates the name", async (t) => {
  assert.equal(netnsPath("faasd-fn.1"), "/var/run/netns/faasd-fn.1");
  for (const bad of ["", "-n", "a/b", "..", ".hidden", "x".repeat(256)]) {
    await t.step(
      JSON.stringify(bad),
      () => assert.throws(() => netnsPath(bad), InvalidArgumentError),
    );
  }
});

Deno.test("createNetns() runs ip netns add and refuses an existing name", async () => {
  const ok = fakeExec();
  assert.equal(await createNetns(ok, "ns1"), "/var/run/netns/ns1");
  assert.deepEqual(ok.calls.map((c) => [c.file, ...c.args]), [["ip", "netns", "add", "ns1"]]);
  const exists = fakeExec(() => ({
    code: 1,
    stderr: 'Cannot create namespace file "/var/run/netns/ns1": File exists\n',
  }));
  await assert.rejects(createNetns(exists, "ns1"), AlreadyExistsError);
  const broken = fakeExec(() => ({
    code: 1,
    stderr: "mount --make-shared /run/netns failed: Permission denied\n",
  }));
  await assert.rejects(createNetns(broken, "ns1"), (err: Error) =>
    err instanceof CommandError &&
    err.message ===
      'Cannot create netns "ns1": mount --make-shared /run/netns failed: Permission denied');
});

Deno.test("deleteNetns() tolerates a missing netns", async () => {
  const missing = fakeExec(() => ({
    code: 1,
    stderr: 'Cannot remove namespace file "/var/run/netns/x": No such file or directory\n',
  }));
  assert.equal(await deleteNetns(missing, "x"), false);
  assert.equal(await deleteNetns(fakeExec(), "x"), true);
});

Deno.test("pruneNetns() deletes only our netns whose container is not live", async () => {
  const f = fakeExec((c) =>
    c.args[1] === "list"
      ? { stdout: "faasd-live\nfaasd-dead (id: 3)\nother-dead\nfaasd-\n" }
      : undefined
  );
  assert.deepEqual(await pruneNetns(f, "faasd-", new Set(["live"])), ["faasd-dead"]);
  assert.deepEqual(f.calls.slice(1).map((c) => c.args), [["netns", "delete", "faasd-dead"]]);
  await assert.rejects(pruneNetns(f, "", new Set()), InvalidArgumentError);
});
