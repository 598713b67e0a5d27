import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderHosts, writeHostsInPlace } from "../../../src/supervisor/hosts.ts";

const BASE = "127.0.0.1\tlocalhost\n10.62.0.1\tfaasd-gateway gateway\n";

Deno.test("renderHosts() appends one sorted line per service", () => {
  assert.equal(
    renderHosts(BASE, new Map([["web", "10.62.0.3"], ["db", "10.62.0.2"]])),
    `${BASE}10.62.0.2\tdb\n10.62.0.3\tweb\n`,
  );
  assert.equal(renderHosts(BASE, new Map()), BASE);
  assert.equal(renderHosts("a b", new Map([["x", "1.2.3.4"]])), "a b\n1.2.3.4\tx\n");
});

Deno.test("writeHostsInPlace() keeps the inode (bind mounts) and shrinks the file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hosts-"));
  try {
    const path = join(dir, "hosts");
    await writeFile(path, renderHosts(BASE, new Map([["a-long-service-name", "10.62.0.9"]])));
    const before = await stat(path);
    await writeHostsInPlace(path, BASE);
    const after = await stat(path);
    assert.equal(after.ino, before.ino);
    assert.equal(await readFile(path, "utf8"), BASE);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
