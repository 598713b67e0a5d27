import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnavailableError } from "../../../src/errors.ts";
import { cgroupFreezer, detectCgroupLayout } from "../../../src/provider/freezer.ts";

// cgroupfs is faked with plain files: the tests check what the freezer writes and reads, not
// the kernel (tests/e2e/provider_test.ts freezes real replicas).

function rpcLog() {
  const calls: string[] = [];
  return {
    calls,
    rpc: {
      pause: (ns: string, id: string) => (calls.push(`pause ${ns}/${id}`), Promise.resolve()),
      resume: (ns: string, id: string) => (calls.push(`resume ${ns}/${id}`), Promise.resolve()),
    },
  };
}

const target = { namespace: "ns", id: "fn-1-0", cgroupsPath: "/ns/fn-1-0" };

Deno.test("cgroup v1: freeze writes FROZEN and returns once the state reads FROZEN; thaw writes THAWED", async () => {
  const root = await mkdtemp(join(tmpdir(), "freezer-"));
  try {
    await mkdir(join(root, "freezer/ns/fn-1-0"), { recursive: true });
    const state = join(root, "freezer/ns/fn-1-0/freezer.state");
    await writeFile(state, "THAWED\n");
    const layout = await detectCgroupLayout(root);
    assert.deepEqual(layout, { version: 1, root: join(root, "freezer") });
    const { calls, rpc } = rpcLog();
    const f = cgroupFreezer(layout, rpc);
    assert.equal(await f.frozen(target), false);
    await f.freeze(target); // a plain file reads back what was written: FROZEN
    assert.equal(await readFile(state, "utf8"), "FROZEN");
    assert.equal(await f.frozen(target), true);
    await f.thaw(target);
    assert.equal(await readFile(state, "utf8"), "THAWED");
    assert.deepEqual(calls, [], "containerd was not asked");
  } finally {
    await rm(root, { recursive: true });
  }
});

Deno.test("cgroup v2: freeze waits for 'frozen 1' in cgroup.events, and gives up with the replica thawed", async () => {
  const root = await mkdtemp(join(tmpdir(), "freezer-"));
  try {
    const dir = join(root, "ns/fn-1-0");
    await mkdir(dir, { recursive: true });
    await writeFile(join(root, "cgroup.controllers"), "cpu memory\n");
    await writeFile(join(dir, "cgroup.freeze"), "0\n");
    await writeFile(join(dir, "cgroup.events"), "populated 1\nfrozen 0\n");
    const layout = await detectCgroupLayout(root);
    assert.deepEqual(layout, { version: 2, root });
    const f = cgroupFreezer(layout, rpcLog().rpc);
    // The kernel never reports frozen: after the timeout the freeze is undone and it fails.
    await assert.rejects(
      f.freeze(target),
      (e: Error) => e instanceof UnavailableError && /could not be frozen/.test(e.message),
    );
    assert.equal(await readFile(join(dir, "cgroup.freeze"), "utf8"), "0");
    await writeFile(join(dir, "cgroup.events"), "populated 1\nfrozen 1\n");
    await f.freeze(target);
    assert.equal(await f.frozen(target), true);
    await f.thaw(target);
    assert.equal(await f.frozen(target), false);
  } finally {
    await rm(root, { recursive: true });
  }
});

Deno.test("without the replica's freezer file, pause and resume go through containerd", async () => {
  const root = await mkdtemp(join(tmpdir(), "freezer-"));
  try {
    await mkdir(join(root, "freezer"), { recursive: true });
    const { calls, rpc } = rpcLog();
    for (const layout of [await detectCgroupLayout(root), undefined]) {
      const f = cgroupFreezer(layout, rpc);
      await f.freeze(target);
      await f.thaw(target);
      assert.equal(await f.frozen(target), undefined);
    }
    assert.deepEqual(calls, [
      "pause ns/fn-1-0",
      "resume ns/fn-1-0",
      "pause ns/fn-1-0",
      "resume ns/fn-1-0",
    ]);
  } finally {
    await rm(root, { recursive: true });
  }
});
