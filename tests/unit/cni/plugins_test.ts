import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Conflist, renderConflist } from "../../../src/cni/conflist.ts";
import { CniError } from "../../../src/cni/errors.ts";
import type { Exec } from "../../../src/cni/exec.ts";
import { Cni } from "../../../src/cni/plugins.ts";
import { attachmentOf, pluginEnv, pluginStdin } from "../../../src/cni/protocol.ts";
import {
  CancelledError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "../../../src/errors.ts";
import { silentLogger } from "../../../src/log.ts";
import { type Call, fakeExec } from "./fake_exec.ts";

const conflist = renderConflist({
  name: "testnet",
  bridge: "test0",
  subnet: "10.9.0.0/24",
  ipamDir: "/ipam",
});

const bridgeResult = {
  cniVersion: "1.0.0",
  interfaces: [
    { name: "test0", mac: "aa:00:00:00:00:01" },
    { name: "veth1", mac: "aa:00:00:00:00:02" },
    { name: "eth0", mac: "aa:00:00:00:00:03", sandbox: "/var/run/netns/ns1" },
  ],
  ips: [{ interface: 2, address: "10.9.0.2/24", gateway: "10.9.0.1" }],
  routes: [{ dst: "0.0.0.0/0" }],
  dns: {},
};
const loResult = {
  cniVersion: "1.0.0",
  interfaces: [{ name: "lo" }],
  ips: [{ interface: 0, address: "127.0.0.1/8" }],
};

interface Env {
  dir: string;
  pluginDir: string;
  cacheDir: string;
}

async function withDirs(fn: (env: Env) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "faasd-cni-"));
  const pluginDir = join(dir, "bin");
  await mkdir(pluginDir);
  for (const p of ["bridge", "firewall", "loopback", "portmap"]) {
    await writeFile(join(pluginDir, p), "#!/bin/sh\nexit 1\n", { mode: 0o755 });
  }
  try {
    await fn({ dir, pluginDir, cacheDir: join(dir, "cache") });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// Answers like the real plugins: ADD prints the (previous) result, DEL prints nothing.
function pluginsLike(
  overrides: (c: Call, type: string) => { code?: number; stdout?: string } | undefined = () =>
    undefined,
) {
  return fakeExec((c) => {
    // Through nice (addNice), the plugin is nice's last argument.
    const type = (c.file.endsWith("/nice") ? c.args.at(-1)! : c.file).split("/").pop()!;
    const o = overrides(c, type);
    if (o) return o;
    if (c.opts.env?.CNI_COMMAND !== "ADD") return {};
    if (type === "loopback") return { stdout: JSON.stringify(loResult) };
    if (type === "bridge") return { stdout: JSON.stringify(bridgeResult) };
    return { stdout: JSON.stringify(JSON.parse(c.opts.stdin!).prevResult) };
  });
}

const stdinOf = (c: Call) => JSON.parse(c.opts.stdin!);
const typeOf = (c: Call) => c.file.split("/").pop();

function cni(env: Env, exec: Exec, list: Conflist = conflist) {
  return new Cni({
    conflist: list,
    pluginDirs: [env.pluginDir],
    cacheDir: env.cacheDir,
    exec,
    log: silentLogger,
  });
}

Deno.test("pluginStdin() copies cniVersion and name, swaps capabilities for runtimeConfig, adds prevResult", async (t) => {
  const list: Conflist = {
    cniVersion: "1.0.0",
    name: "n",
    plugins: [
      { type: "bridge", cniVersion: "0.3.1", name: "ignored", bridge: "b0" },
      { type: "portmap", capabilities: { portMappings: true, bandwidth: false }, snat: true },
    ],
  };
  const rc = {
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
    bandwidth: { x: 1 },
    ips: ["1.2.3.4"],
  };
  const cases = [
    {
      name: "first plugin: no prevResult, list values win",
      plugin: 0,
      opts: {},
      want: { type: "bridge", cniVersion: "1.0.0", name: "n", bridge: "b0" },
    },
    {
      name: "declared and enabled capabilities only",
      plugin: 1,
      opts: { runtimeConfig: rc, prevResult: bridgeResult },
      want: {
        type: "portmap",
        snat: true,
        cniVersion: "1.0.0",
        name: "n",
        runtimeConfig: { portMappings: rc.portMappings },
        prevResult: bridgeResult,
      },
    },
    {
      name: "no runtimeConfig when nothing matches",
      plugin: 1,
      opts: { runtimeConfig: { ips: [] } },
      want: { type: "portmap", snat: true, cniVersion: "1.0.0", name: "n" },
    },
  ];
  for (const c of cases) {
    await t.step(
      c.name,
      () => assert.deepEqual(pluginStdin(list, list.plugins[c.plugin], c.opts), c.want),
    );
  }
});

Deno.test("pluginEnv() sets the CNI parameters and nothing inherited", () => {
  assert.deepEqual(
    pluginEnv({
      command: "DEL",
      containerId: "c1",
      netns: "/var/run/netns/x",
      ifName: "eth0",
      pluginDirs: ["/a", "/b"],
      path: "/usr/sbin:/usr/bin",
    }),
    {
      CNI_COMMAND: "DEL",
      CNI_CONTAINERID: "c1",
      CNI_NETNS: "/var/run/netns/x",
      CNI_IFNAME: "eth0",
      CNI_PATH: "/a:/b",
      PATH: "/usr/sbin:/usr/bin",
    },
  );
});

Deno.test("attachmentOf() picks the sandbox interface's IPv4 address and gateway", () => {
  const r = {
    ...bridgeResult,
    ips: [{ interface: 2, address: "fd00::2/64", gateway: "fd00::1" }, ...bridgeResult.ips],
  };
  assert.deepEqual(attachmentOf(r, "eth0"), {
    ip: "10.9.0.2",
    address: "10.9.0.2/24",
    gateway: "10.9.0.1",
  });
  assert.throws(() => attachmentOf({ ips: [] }, "eth0"), CniError);
});

Deno.test("add() runs loopback for lo, then the list in order with prevResult chaining, and caches the result", () =>
  withDirs(async (env) => {
    const { exec, calls } = pluginsLike();
    const a = await cni(env, exec).add("fn-abc", "/var/run/netns/ns1");
    assert.equal(a.ip, "10.9.0.2");
    assert.equal(a.gateway, "10.9.0.1");
    assert.deepEqual(a.raw, bridgeResult);

    assert.deepEqual(calls.map(typeOf), ["loopback", "bridge", "firewall"]);
    assert.deepEqual(stdinOf(calls[0]), { type: "loopback", cniVersion: "1.0.0", name: "lo" });
    assert.equal(calls[0].opts.env!.CNI_IFNAME, "lo");
    const bridge = stdinOf(calls[1]);
    assert.equal(bridge.cniVersion, "1.0.0");
    assert.equal(bridge.name, "testnet");
    assert.equal(bridge.prevResult, undefined);
    assert.deepEqual(bridge.ipam, conflist.plugins[0].ipam);
    assert.deepEqual(stdinOf(calls[2]), {
      type: "firewall",
      cniVersion: "1.0.0",
      name: "testnet",
      prevResult: bridgeResult,
    });
    for (const c of calls.slice(1)) {
      assert.deepEqual(c.opts.env, {
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: "fn-abc",
        CNI_NETNS: "/var/run/netns/ns1",
        CNI_IFNAME: "eth0",
        CNI_PATH: env.pluginDir,
        PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      });
      assert.equal(c.file, join(env.pluginDir, typeOf(c)!));
    }
    const cached = JSON.parse(await readFile(join(env.cacheDir, "fn-abc.json"), "utf8"));
    assert.deepEqual(cached, {
      containerId: "fn-abc",
      netns: "/var/run/netns/ns1",
      ifName: "eth0",
      config: conflist,
      result: bridgeResult,
    });
  }));

Deno.test("add() passes runtimeConfig to plugins that declare the capability", () =>
  withDirs(async (env) => {
    const list: Conflist = {
      ...conflist,
      plugins: [...conflist.plugins, { type: "portmap", capabilities: { portMappings: true } }],
    };
    const { exec, calls } = pluginsLike();
    const portMappings = [{ hostPort: 8081, containerPort: 8080, protocol: "tcp" }];
    await cni(env, exec, list).add("fn-abc", "/var/run/netns/ns1", {
      runtimeConfig: { portMappings },
    });
    assert.deepEqual(calls.map(typeOf), ["loopback", "bridge", "firewall", "portmap"]);
    assert.equal(stdinOf(calls[1]).runtimeConfig, undefined);
    assert.deepEqual(stdinOf(calls[3]), {
      type: "portmap",
      cniVersion: "1.0.0",
      name: "testnet",
      runtimeConfig: { portMappings },
      prevResult: bridgeResult,
    });
  }));

Deno.test("del() runs the cached list in reverse with the cached result as prevResult, then drops the cache", () =>
  withDirs(async (env) => {
    const { exec, calls } = pluginsLike();
    await cni(env, exec).add("fn-abc", "/var/run/netns/ns1");
    calls.length = 0;
    // A restarted appliance with a changed conflist still deletes with what ADD used.
    const changed = renderConflist({
      name: "othernet",
      bridge: "other0",
      subnet: "10.8.0.0/24",
      ipamDir: "/x",
    });
    await cni(env, exec, changed).del("fn-abc");
    assert.deepEqual(calls.map(typeOf), ["firewall", "bridge"]);
    for (const c of calls) {
      assert.equal(c.opts.env!.CNI_COMMAND, "DEL");
      assert.equal(c.opts.env!.CNI_NETNS, "/var/run/netns/ns1");
      assert.equal(stdinOf(c).name, "testnet");
      assert.deepEqual(stdinOf(c).prevResult, bridgeResult);
    }
    assert.equal(await cni(env, exec).cached("fn-abc"), undefined);
  }));

Deno.test("del() of an unknown container still runs every plugin, without prevResult", () =>
  withDirs(async (env) => {
    const { exec, calls } = pluginsLike();
    await cni(env, exec).del("never-added", "/var/run/netns/gone");
    assert.deepEqual(calls.map(typeOf), ["firewall", "bridge"]);
    for (const c of calls) {
      assert.equal(stdinOf(c).prevResult, undefined);
      assert.equal(c.opts.env!.CNI_NETNS, "/var/run/netns/gone");
    }
  }));

Deno.test("a failing plugin's error names plugin, command and container, and ADD is rolled back", async (t) => {
  const cases = [
    { name: "plugin-specific code", code: 999, msg: "failed to set bridge addr", cls: CniError },
    { name: "invalid config", code: 7, msg: "bad ipam", cls: InvalidArgumentError },
    { name: "try again later", code: 11, msg: "busy", cls: UnavailableError },
  ];
  for (const c of cases) {
    await t.step(c.name, () =>
      withDirs(async (env) => {
        const { exec, calls } = pluginsLike((call, type) =>
          type === "firewall" && call.opts.env?.CNI_COMMAND === "ADD"
            ? {
              code: 1,
              stdout: JSON.stringify({
                cniVersion: "1.0.0",
                code: c.code,
                msg: c.msg,
                details: "d",
              }),
            }
            : undefined
        );
        await assert.rejects(cni(env, exec).add("fn-abc", "/var/run/netns/ns1"), (err: Error) => {
          assert.ok(err instanceof c.cls, String(err));
          assert.equal(err.message, `CNI firewall ADD for "fn-abc": ${c.msg} (d)`);
          return true;
        });
        const rollback = calls.slice(3);
        assert.deepEqual(rollback.map((x) => `${typeOf(x)} ${x.opts.env!.CNI_COMMAND}`), [
          "firewall DEL",
          "bridge DEL",
        ]);
        assert.deepEqual(stdinOf(rollback[1]).prevResult, bridgeResult);
        assert.equal(await cni(env, exec).cached("fn-abc"), undefined);
      }));
  }
});

Deno.test("a plugin failing without JSON reports its stderr", () =>
  withDirs(async (env) => {
    const { exec } = fakeExec((c) =>
      typeOf(c) === "bridge" ? { code: 1, stderr: "panic: boom\n" } : undefined
    );
    await assert.rejects(cni(env, exec).del("fn-abc", ""), (err: Error) => {
      assert.ok(err instanceof CniError);
      assert.equal(err.message, `CNI bridge DEL for "fn-abc": panic: boom`);
      return true;
    });
  }));

Deno.test("add() for a container with a cached attachment deletes the old one first", () =>
  withDirs(async (env) => {
    const { exec, calls } = pluginsLike();
    await cni(env, exec).add("fn-abc", "/var/run/netns/old");
    calls.length = 0;
    await cni(env, exec).add("fn-abc", "/var/run/netns/ns1");
    assert.deepEqual(
      calls.map((c) => `${typeOf(c)} ${c.opts.env!.CNI_COMMAND} ${c.opts.env!.CNI_NETNS}`),
      [
        "firewall DEL /var/run/netns/old",
        "bridge DEL /var/run/netns/old",
        "loopback ADD /var/run/netns/ns1",
        "bridge ADD /var/run/netns/ns1",
        "firewall ADD /var/run/netns/ns1",
      ],
    );
  }));

Deno.test("check() runs the list in order with the cached result, and needs an attachment", () =>
  withDirs(async (env) => {
    const { exec, calls } = pluginsLike();
    await assert.rejects(cni(env, exec).check("fn-abc"), NotFoundError);
    await cni(env, exec).add("fn-abc", "/var/run/netns/ns1");
    calls.length = 0;
    await cni(env, exec).check("fn-abc");
    assert.deepEqual(calls.map((c) => `${typeOf(c)} ${c.opts.env!.CNI_COMMAND}`), [
      "bridge CHECK",
      "firewall CHECK",
    ]);
    assert.deepEqual(stdinOf(calls[0]).prevResult, bridgeResult);
  }));

Deno.test("a missing plugin and a bad container ID are reported before anything runs", () =>
  withDirs(async (env) => {
    const { exec, calls } = pluginsLike();
    const list: Conflist = { ...conflist, plugins: [{ type: "nosuch" }] };
    await assert.rejects(
      cni(env, exec, list).del("fn-abc", ""),
      (err: Error) =>
        err instanceof NotFoundError &&
        err.message ===
          `CNI nosuch DEL for "fn-abc": plugin "nosuch" not found in ${env.pluginDir}`,
    );
    await assert.rejects(cni(env, exec).add("../etc", "/var/run/netns/x"), InvalidArgumentError);
    await assert.rejects(cni(env, exec).add("fn-abc", ""), InvalidArgumentError);
    assert.equal(calls.length, 0);
  }));

Deno.test("a cancelled add() is still rolled back, without the caller's signal", () =>
  withDirs(async (env) => {
    const ac = new AbortController();
    const { exec, calls } = pluginsLike((c, type) => {
      if (type !== "firewall" || c.opts.env?.CNI_COMMAND !== "ADD") return undefined;
      ac.abort();
      throw new CancelledError(`"firewall" was cancelled`);
    });
    await assert.rejects(
      cni(env, exec).add("fn-abc", "/var/run/netns/ns1", { signal: ac.signal }),
      CancelledError,
    );
    const rollback = calls.slice(3);
    assert.deepEqual(rollback.map(typeOf), ["firewall", "bridge"]);
    for (const c of rollback) assert.equal(c.opts.signal, undefined);
  }));

Deno.test("add() with addNice runs each plugin through nice; del() does not", () =>
  withDirs(async (env) => {
    const { exec, calls } = pluginsLike();
    const c = new Cni({
      conflist,
      pluginDirs: [env.pluginDir],
      cacheDir: env.cacheDir,
      exec,
      log: silentLogger,
      loopback: false,
      addNice: { nice: "/usr/bin/nice", niceness: 10 },
    });
    await c.add("fn-nice", "/var/run/netns/ns1");
    assert.deepEqual(
      calls.map((x) => [x.file, ...x.args]),
      [
        ["/usr/bin/nice", "-n", "10", join(env.pluginDir, "bridge")],
        ["/usr/bin/nice", "-n", "10", join(env.pluginDir, "firewall")],
      ],
    );
    calls.length = 0;
    await c.del("fn-nice", "/var/run/netns/ns1");
    assert.ok(calls.length > 0);
    assert.ok(calls.every((x) => x.file.startsWith(env.pluginDir) && x.args.length === 0));
  }));
