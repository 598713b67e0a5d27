import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCache } from "../../../src/cni/cache.ts";
import { renderConflist } from "../../../src/cni/conflist.ts";
import {
  isLeaseFileName,
  listLeases,
  parseLeaseFile,
  releaseStaleLeases,
} from "../../../src/cni/leases.ts";

Deno.test("parseLeaseFile() reads the container ID and interface host-local wrote", async (t) => {
  const cases = [
    {
      name: "plugins ≥ 0.9: ID CRLF ifname",
      content: "fn-abc\r\neth0",
      want: { containerId: "fn-abc", ifName: "eth0" },
    },
    { name: "LF only", content: "fn-abc\neth1\n", want: { containerId: "fn-abc", ifName: "eth1" } },
    { name: "older plugins: ID alone", content: "fn-abc", want: { containerId: "fn-abc" } },
    { name: "trailing whitespace", content: "fn-abc \r\n", want: { containerId: "fn-abc" } },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(parseLeaseFile(c.content), c.want));
  }
});

Deno.test("isLeaseFileName() accepts addresses and skips lock and last_reserved_ip files", () => {
  assert.ok(isLeaseFileName("10.62.0.2"));
  assert.ok(isLeaseFileName("fd00::2"));
  for (const n of ["lock", "last_reserved_ip.0", "10.62.0", "10.62.0.2.tmp"]) {
    assert.ok(!isLeaseFileName(n), n);
  }
});

async function withIpam(fn: (ipamDir: string, netDir: string, cacheDir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "faasd-leases-"));
  const netDir = join(dir, "ipam", "testnet");
  await mkdir(netDir, { recursive: true });
  await writeFile(join(netDir, "lock"), "");
  await writeFile(join(netDir, "last_reserved_ip.0"), "10.9.0.4");
  try {
    await fn(join(dir, "ipam"), netDir, join(dir, "cache"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("releaseStaleLeases() removes leases and cache entries of containers that are not live", () =>
  withIpam(async (ipamDir, netDir, cacheDir) => {
    await writeFile(join(netDir, "10.9.0.2"), "live-1\r\neth0");
    await writeFile(join(netDir, "10.9.0.3"), "dead-1\r\neth0");
    await writeFile(join(netDir, "10.9.0.4"), "dead-2");
    const past = new Date(Date.now() - 60_000);
    for (const ip of ["10.9.0.2", "10.9.0.3", "10.9.0.4"]) {
      await utimes(join(netDir, ip), past, past);
    }
    const config = renderConflist({
      name: "testnet",
      bridge: "t0",
      subnet: "10.9.0.0/24",
      ipamDir,
    });
    for (const id of ["live-1", "dead-1"]) {
      await writeCache(cacheDir, {
        containerId: id,
        netns: "/x",
        ifName: "eth0",
        config,
        result: {},
      });
    }

    const released = await releaseStaleLeases({
      ipamDir,
      networkName: "testnet",
      live: new Set(["live-1"]),
      cacheDir,
    });
    assert.deepEqual(released.leases.map((l) => [l.ip, l.containerId]), [["10.9.0.3", "dead-1"], [
      "10.9.0.4",
      "dead-2",
    ]]);
    assert.deepEqual(released.cache, ["dead-1"]);
    assert.deepEqual((await readdir(netDir)).sort(), ["10.9.0.2", "last_reserved_ip.0", "lock"]);
    assert.deepEqual(await readdir(cacheDir), ["live-1.json"]);
    assert.deepEqual((await listLeases(ipamDir, "testnet")).map((l) => l.containerId), ["live-1"]);
  }));

Deno.test("releaseStaleLeases() keeps leases written after `before` (a replica attaching meanwhile)", () =>
  withIpam(async (ipamDir, netDir) => {
    const before = new Date(Date.now() - 10_000);
    await writeFile(join(netDir, "10.9.0.5"), "new-1\r\neth0");
    const released = await releaseStaleLeases({
      ipamDir,
      networkName: "testnet",
      live: new Set(),
      before,
    });
    assert.deepEqual(released.leases, []);
    assert.deepEqual(released.cache, []);
  }));

Deno.test("releaseStaleLeases() on a network without a lease directory releases nothing", () =>
  withIpam(async (ipamDir) => {
    assert.deepEqual(
      await releaseStaleLeases({ ipamDir, networkName: "unused", live: new Set() }),
      { leases: [], cache: [] },
    );
  }));
