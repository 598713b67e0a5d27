import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removePath, writeIfChanged } from "../../../src/install/files.ts";
import { applyIpForward } from "../../../src/install/sysctl.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "faasd-files-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("writeIfChanged() creates, leaves alone, fixes the mode, and replaces content", () =>
  withDir(async (dir) => {
    const path = join(dir, "etc/sub/file");
    assert.equal(await writeIfChanged(path, "one\n", 0o644), "created");
    assert.equal(await writeIfChanged(path, "one\n", 0o644), "unchanged");
    await chmod(path, 0o600);
    assert.equal(await writeIfChanged(path, "one\n", 0o644), "updated");
    assert.equal((await stat(path)).mode & 0o777, 0o644);
    assert.equal(await writeIfChanged(path, new TextEncoder().encode("two\n"), 0o755), "updated");
    assert.equal(await readFile(path, "utf8"), "two\n");
    assert.equal((await stat(path)).mode & 0o777, 0o755);
    assert.deepEqual(await readdir(join(dir, "etc/sub")), ["file"], "no temporary file is left");
  }));

Deno.test("removePath() removes files, trees and dangling links, and says whether it did", () =>
  withDir(async (dir) => {
    await mkdir(join(dir, "tree/a"), { recursive: true });
    await writeFile(join(dir, "tree/a/f"), "x");
    await Deno.symlink("/nonexistent/target", join(dir, "link"));
    assert.equal(await removePath(join(dir, "tree")), true);
    assert.equal(await removePath(join(dir, "link")), true);
    assert.equal(await removePath(join(dir, "tree")), false);
    assert.deepEqual(await readdir(dir), []);
  }));

Deno.test("applyIpForward() turns forwarding on only when it is off", () =>
  withDir(async (dir) => {
    const file = join(dir, "net/ipv4/ip_forward");
    await mkdir(join(dir, "net/ipv4"), { recursive: true });
    await writeFile(file, "0\n");
    assert.equal(await applyIpForward(dir), true);
    assert.equal(await readFile(file, "utf8"), "1\n");
    assert.equal(await applyIpForward(dir), false);
  }));
