import assert from "node:assert/strict";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentialPaths, ensureCredentials } from "../../../src/install/credentials.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "faasd-creds-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("ensureCredentials() creates admin and a long random password, readable by root only", () =>
  withDir(async (dir) => {
    const c = await ensureCredentials(dir);
    assert.equal(c.user, "admin");
    assert.ok(c.password.length >= 40, `password length ${c.password.length}`);
    assert.ok(c.created);
    const paths = credentialPaths(dir);
    assert.equal((await stat(paths.password)).mode & 0o777, 0o600);
    assert.equal((await stat(paths.dir)).mode & 0o777, 0o700);
  }));

Deno.test("ensureCredentials() never overwrites existing credentials", () =>
  withDir(async (dir) => {
    const first = await ensureCredentials(dir);
    const second = await ensureCredentials(dir);
    assert.equal(second.password, first.password);
    assert.equal(second.created, false);
    await writeFile(credentialPaths(dir).password, "changed-by-user\n");
    assert.equal((await ensureCredentials(dir)).password, "changed-by-user");
  }));
