/**
 * End-to-end: the real CNI plugins from /usr/lib/cni on a bridge and subnet of the test's own,
 * with replicas stood in for by named netns running busybox httpd. Everything the test creates
 * (netns, bridge, iptables rules and chains, leases) is removed and checked for at the end.
 * IPv4 forwarding stays on: it is a host prerequisite the bridge plugin (isGateway) sets itself,
 * and turning it off could break an appliance running on the same host.
 */

import assert from "node:assert/strict";
import { access, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listCache } from "../../src/cni/cache.ts";
import { gatewayIp, renderConflist, subnetContains } from "../../src/cni/conflist.ts";
import { createExec, run } from "../../src/cni/exec.ts";
import { collectNetworkGarbage } from "../../src/cni/gc.ts";
import { enableIpForward, linkExists, teardownNetwork } from "../../src/cni/host.ts";
import { pruneForwardRules, pruneMasquerade } from "../../src/cni/iptables.ts";
import { listLeases, releaseStaleLeases } from "../../src/cni/leases.ts";
import {
  createNetns,
  deleteNetns,
  listNetns,
  NETNS_DIR,
  netnsMounted,
  netnsPath,
} from "../../src/cni/netns.ts";
import { Cni } from "../../src/cni/plugins.ts";
import { createLogger } from "../../src/log.ts";

const exec = createExec();
const BUSYBOX = "/bin/busybox";

/** What this host lacks for the test; it fails naming it rather than being skipped. */
async function missingRequirements(): Promise<string[]> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push("root");
  for (
    const p of ["/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/firewall", BUSYBOX]
  ) {
    await access(p).catch(() => missing.push(p));
  }
  return missing;
}

/** A 10.199.<n>.0/24 that no interface or route on this host mentions yet. */
async function freeSubnet(): Promise<string> {
  const used = (await run(exec, "ip addr", "ip", ["-4", "addr"])) +
    (await run(exec, "ip route", "ip", ["-4", "route"])) +
    (await run(exec, "iptables-save", "iptables-save", []));
  for (let i = 0; i < 50; i++) {
    const n = Math.floor(Math.random() * 256);
    if (!used.includes(`10.199.${n}.`)) return `10.199.${n}.0/24`;
  }
  throw new Error("no free 10.199.x.0/24 subnet");
}

async function iptablesSave(): Promise<string> {
  return await run(exec, "iptables-save", "iptables-save", []);
}

async function fetchText(url: string): Promise<string> {
  let last: unknown;
  // httpd needs a moment to bind after `ip netns exec` starts it.
  for (let i = 0; i < 30; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      return await res.text();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`GET ${url} failed: ${last}`);
}

Deno.test({
  name: "CNI: replicas get their own netns and IP, reach each other, and leave nothing behind",
  fn: async (t) => {
    const missing = await missingRequirements();
    assert.deepEqual(
      missing,
      [],
      `this test needs ${
        missing.join(", ")
      } (apt-get install containernetworking-plugins busybox-static; run as root)`,
    );
    const rand = Math.random().toString(16).slice(2, 6).padStart(4, "0");
    const bridge = `fdt${rand}`;
    const networkName = `fdt-e2e-${rand}`;
    const prefix = `fdt${rand}-`;
    const subnet = await freeSubnet();
    const net = subnet.slice(0, subnet.lastIndexOf(".")); // 10.199.n
    const dir = await mkdtemp(join(tmpdir(), "faasd-cni-e2e-"));
    const ipamDir = join(dir, "ipam");
    const cacheDir = join(dir, "cache");
    const logLines: string[] = [];
    const log = createLogger({ level: "debug", write: (l) => logLines.push(l) });
    const conflist = renderConflist({ name: networkName, bridge, subnet, ipamDir });
    const newCni = () => new Cni({ conflist, cacheDir, exec, log });
    const cni = newCni();
    const servers: Deno.ChildProcess[] = [];
    const serve = async (ns: string) => {
      const root = join(dir, `www-${ns}`);
      await rm(root, { recursive: true, force: true });
      await Deno.mkdir(root);
      await writeFile(join(root, "id"), ns);
      servers.push(
        new Deno.Command("ip", {
          args: ["netns", "exec", prefix + ns, BUSYBOX, "httpd", "-f", "-p", "8080", "-h", root],
          stdout: "null",
          stderr: "null",
        }).spawn(),
      );
    };
    let passed = false;

    try {
      await t.step("enableIpForward() turns forwarding on", async () => {
        await enableIpForward({ exec });
        assert.equal(
          (await run(exec, "sysctl", "sysctl", ["-n", "net.ipv4.ip_forward"])).trim(),
          "1",
        );
        assert.deepEqual(await enableIpForward({ exec }), { changed: false });
      });

      const ips: Record<string, string> = {};
      await t.step(
        "add() gives two replicas different IPs in the subnet, with .1 as gateway",
        async () => {
          for (const id of ["fn-a", "fn-b"]) {
            assert.equal(await netnsMounted(prefix + id), false, "before it is created");
            const path = await createNetns({ exec }, prefix + id);
            assert.equal(path, netnsPath(prefix + id));
            assert.equal(await netnsMounted(prefix + id), true, "once it is created");
            const a = await cni.add(id, path);
            assert.ok(subnetContains(subnet, a.ip), `${a.ip} in ${subnet}`);
            assert.equal(a.gateway, gatewayIp(subnet));
            assert.equal(a.gateway, `${net}.1`);
            ips[id] = a.ip;
          }
          assert.notEqual(ips["fn-a"], ips["fn-b"]);
          // A file left without its mount (as after a failed `ip netns add`) is no netns.
          const plain = `${NETNS_DIR}/${prefix}plain`;
          await Deno.writeTextFile(plain, "");
          try {
            assert.equal(await netnsMounted(prefix + "plain"), false, "a plain file");
          } finally {
            await Deno.remove(plain);
          }
          const leases = await listLeases(ipamDir, networkName);
          assert.deepEqual(
            leases.map((l) => [l.ip, l.containerId, l.ifName]).sort(),
            [
              [ips["fn-a"], "fn-a", "eth0"],
              [ips["fn-b"], "fn-b", "eth0"],
            ].sort(),
          );
          assert.deepEqual(await listCache(cacheDir), ["fn-a", "fn-b"]);
          // lo is up inside the netns too.
          const lo = await run(exec, "ip", "ip", [
            "netns",
            "exec",
            prefix + "fn-a",
            "ip",
            "-4",
            "addr",
            "show",
            "lo",
          ]);
          assert.match(lo, /127\.0\.0\.1/);
        },
      );

      await t.step("check() passes for an attached replica", async () => {
        await cni.check("fn-a");
      });

      await t.step("the host reaches each replica, and the replicas reach each other", async () => {
        await serve("fn-a");
        await serve("fn-b");
        assert.equal(await fetchText(`http://${ips["fn-a"]}:8080/id`), "fn-a");
        assert.equal(await fetchText(`http://${ips["fn-b"]}:8080/id`), "fn-b");
        // busybox wget segfaults in this busybox-static build, so nc speaks HTTP/1.0 by hand.
        const get = async (from: string, to: string) => {
          const res = await run(exec, `GET from ${from}`, "ip", [
            "netns",
            "exec",
            prefix + from,
            BUSYBOX,
            "nc",
            "-w",
            "3",
            ips[to],
            "8080",
          ], { stdin: "GET /id HTTP/1.0\r\n\r\n" });
          return res.split("\r\n\r\n")[1];
        };
        assert.equal(await get("fn-a", "fn-b"), "fn-b");
        assert.equal(await get("fn-b", "fn-a"), "fn-a");
        await run(exec, "ping the gateway", "ip", [
          "netns",
          "exec",
          prefix + "fn-a",
          BUSYBOX,
          "ping",
          "-c1",
          "-W2",
          `${net}.1`,
        ]);
        const route = await run(exec, "ip route", "ip", [
          "netns",
          "exec",
          prefix + "fn-a",
          "ip",
          "route",
        ]);
        assert.match(route, new RegExp(`default via ${net.replaceAll(".", "\\.")}\\.1 dev eth0`));
      });

      await t.step("del() releases both leases and the per-replica iptables rules", async () => {
        for (const s of servers.splice(0)) {
          s.kill("SIGKILL");
          await s.status;
        }
        await cni.del("fn-a", netnsPath(prefix + "fn-a"));
        await cni.del("fn-b"); // the netns path comes from the cache
        await cni.del("fn-b"); // a repeated DEL is fine
        assert.deepEqual(await listLeases(ipamDir, networkName), []);
        assert.deepEqual(await listCache(cacheDir), []);
        const rules = await iptablesSave();
        assert.ok(!rules.includes(networkName), rules);
        assert.ok(!rules.includes(`${net}.`), rules);
        for (const id of ["fn-a", "fn-b"]) assert.ok(await deleteNetns({ exec }, prefix + id));
      });

      await t.step(
        "a netns deleted without DEL: releaseStaleLeases() and the prune helpers clean up",
        async () => {
          const path = await createNetns({ exec }, prefix + "fn-crash");
          const a = await cni.add("fn-crash", path);
          await deleteNetns({ exec }, prefix + "fn-crash");
          const released = await releaseStaleLeases({
            ipamDir,
            networkName,
            live: new Set(),
            cacheDir,
          });
          assert.deepEqual(released.leases.map((l) => [l.ip, l.containerId]), [[a.ip, "fn-crash"]]);
          assert.deepEqual(released.cache, ["fn-crash"]);
          assert.deepEqual(await listLeases(ipamDir, networkName), []);
          // Without DEL the bridge's masquerade rule and the firewall's accept rules stay behind.
          assert.match(
            await iptablesSave(),
            new RegExp(
              `-s ${
                a.ip.replaceAll(".", "\\.")
              }/32 -m comment --comment "name: \\\\"${networkName}`,
            ),
          );
          assert.deepEqual(await pruneMasquerade({ exec }, { networkName, live: new Set() }), [
            "fn-crash",
          ]);
          assert.deepEqual(await pruneForwardRules({ exec }, { subnet, keep: new Set() }), [a.ip]);
          const rules = await iptablesSave();
          assert.ok(!rules.includes(networkName) && !rules.includes(`${net}.`), rules);
        },
      );

      await t.step(
        "after an appliance restart, collectNetworkGarbage() detaches what is not live",
        async () => {
          const keep = await cni.add("fn-keep", await createNetns({ exec }, prefix + "fn-keep"));
          const gone = await cni.add("fn-gone", await createNetns({ exec }, prefix + "fn-gone"));
          await createNetns({ exec }, prefix + "fn-orphan"); // a netns whose ADD never happened
          const report = await collectNetworkGarbage({ cni: newCni(), exec, log }, {
            ipamDir,
            cacheDir,
            networkName,
            subnet,
            netnsPrefix: prefix,
            live: new Set(["fn-keep"]),
          });
          assert.deepEqual(report.detached, ["fn-gone"]);
          assert.deepEqual(report.leases, []); // DEL released it already
          assert.deepEqual(report.masquerade, []);
          assert.deepEqual(report.forwardRules, []);
          assert.deepEqual(report.netns, [prefix + "fn-gone", prefix + "fn-orphan"]);
          assert.deepEqual((await listLeases(ipamDir, networkName)).map((l) => l.ip), [keep.ip]);
          const rules = await iptablesSave();
          assert.ok(rules.includes(`${keep.ip}/32`));
          assert.ok(!rules.includes(`${gone.ip}/32`), rules);
          await cni.del("fn-keep");
          await deleteNetns({ exec }, prefix + "fn-keep");
        },
      );
      passed = true;
    } finally {
      for (const s of servers) {
        try {
          s.kill("SIGKILL");
        } catch { /* already gone */ }
        await s.status;
      }
      for (const ns of await listNetns({ exec })) {
        if (ns.startsWith(prefix)) await deleteNetns({ exec }, ns);
      }
      const teardown = await teardownNetwork({ exec }, { bridge, networkName });
      if (!passed) console.error(`teardown: ${JSON.stringify(teardown)}\n${logLines.join("\n")}`);
    }

    try {
      assert.deepEqual((await listNetns({ exec })).filter((n) => n.startsWith(prefix)), []);
      assert.equal(await linkExists({ exec }, bridge), false);
      assert.deepEqual(
        await readdir(join(ipamDir, networkName)).then((f) => f.filter((n) => n.startsWith("10."))),
        [],
      );
      const rules = await iptablesSave();
      for (const s of [networkName, bridge, `${net}.`]) {
        assert.ok(!rules.includes(s), `"${s}" left in iptables:\n${rules}`);
      }
      assert.ok(!(await run(exec, "ip route", "ip", ["-4", "route"])).includes(`${net}.`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});
