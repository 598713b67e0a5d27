import assert from "node:assert/strict";
import { CommandError } from "../../../src/cni/errors.ts";
import { createExec, run } from "../../../src/cni/exec.ts";
import { CancelledError, NotFoundError, TimeoutError } from "../../../src/errors.ts";

Deno.test("createExec() feeds stdin, passes env and reports exit code and output", async () => {
  const exec = createExec();
  const r = await exec("/bin/sh", ["-c", 'cat; echo "$FOO" >&2; exit 3'], {
    stdin: "hello",
    env: { FOO: "bar" },
  });
  assert.deepEqual(r, { code: 3, stdout: "hello", stderr: "bar\n" });
});

Deno.test("createExec() maps a missing binary, a timeout and an abort to our errors", async () => {
  const exec = createExec();
  await assert.rejects(exec("/nonexistent/plugin", []), NotFoundError);
  await assert.rejects(exec("/bin/sh", ["-c", "sleep 5"], { timeoutMs: 50 }), TimeoutError);
  const ac = new AbortController();
  const p = exec("/bin/sh", ["-c", "sleep 5"], { signal: ac.signal });
  ac.abort();
  await assert.rejects(p, CancelledError);
});

Deno.test("run() turns a non-zero exit into a CommandError carrying stderr", async () => {
  await assert.rejects(
    run(createExec(), "Cannot do the thing", "/bin/sh", ["-c", "echo nope >&2; exit 1"]),
    (err: Error) => {
      assert.ok(err instanceof CommandError);
      assert.equal(err.message, "Cannot do the thing: nope");
      assert.equal(err.exitCode, 1);
      return true;
    },
  );
});

Deno.test("a child ended by a signal reports it, and run() names it", async () => {
  const exec = createExec();
  const r = await exec("/bin/sh", ["-c", "kill -SEGV $$"]);
  assert.equal(r.code, 139);
  assert.equal(r.signal, "SIGSEGV");
  await assert.rejects(
    run(exec, "Cannot crash", "/bin/sh", ["-c", "kill -SEGV $$"]),
    /Cannot crash: killed by SIGSEGV/,
  );
});
