import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FailedPreconditionError } from "../../../src/errors.ts";
import { checkPrerequisites } from "../../../src/install/prerequisites.ts";

Deno.test("checkPrerequisites() names what is missing and the apt command that installs it", async () => {
  const root = await mkdtemp(join(tmpdir(), "faasd-prereq-"));
  try {
    const bin = join(root, "bin");
    const cni = join(root, "cni");
    await mkdir(bin);
    await mkdir(cni);
    await writeFile(join(bin, "runc"), "", { mode: 0o755 });
    const search = { path: [bin], pluginDirs: [cni] };
    await assert.rejects(checkPrerequisites(search), (err: Error) => {
      assert.ok(err instanceof FailedPreconditionError);
      assert.match(
        err.message,
        /missing: containerd, the CNI plugins \(no "bridge" plugin in .*\) \(searched PATH .*\/bin\)\./,
      );
      assert.ok(!err.message.includes("runc,"), err.message);
      assert.match(err.message, /apt-get install containerd runc containernetworking-plugins/);
      return true;
    });
    await writeFile(join(bin, "containerd"), "", { mode: 0o755 });
    await writeFile(join(cni, "bridge"), "", { mode: 0o755 });
    await checkPrerequisites(search);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
