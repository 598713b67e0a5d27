/**
 * Cleans up after a test process that died without its own clean-up (the Deno runtime panics now
 * and then, see scripts/dev.sh): what it started and made since `--since` is removed.
 *
 *   deno run -A scripts/clean_after_crash.ts --since EPOCH_MS --namespaces-before NS,NS,...
 *
 * - processes whose command line names a temp dir the run made (appliances, registries, NATS) are
 *   killed; an appliance's bridge, subnet rules and replica netns go with it;
 * - containerd namespaces that did not exist before the run are purged (tasks, containers,
 *   images, leases, snapshots, the namespace, its cgroups and runtime dirs); none when the list
 *   before it is `?` (containerd could not be asked);
 * - test bridges left without their appliance (`fdt…`) go with their subnet rules;
 * - the run's temp dirs (`/tmp/faasd-*` made since then) are removed.
 *
 * Best effort: it reports what it did and what failed, and always exits 0.
 */

import { readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createExec } from "../src/cni/exec.ts";
import { removeBridge } from "../src/cni/host.ts";
import { removeFirewallChains } from "../src/cni/iptables.ts";
import { removeSubnetRules } from "../src/cni/subnet_rules.ts";
import { Containerd } from "../src/containerd/client.ts";
import { removeTestNetwork } from "../tests/fixtures/appliance.ts";
import { purgeNamespace } from "../tests/fixtures/namespace.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    since: { type: "string" },
    "namespaces-before": { type: "string", default: "" },
    socket: { type: "string", default: "/run/containerd/containerd.sock" },
  },
});
const since = Number(values.since);
if (!Number.isFinite(since)) {
  console.error("clean_after_crash: --since EPOCH_MS is required");
  Deno.exit(0);
}
const say = (msg: string) => console.error(`clean_after_crash: ${msg}`);

// The run's temp dirs.
const dirs: string[] = [];
for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
  if (!name.startsWith("faasd-")) continue;
  const path = join(tmpdir(), name);
  const st = await stat(path).catch(() => undefined);
  // Made during the run: its birth time where the file system keeps one, else its last change.
  const made = st && (st.birthtimeMs > 0 ? st.birthtimeMs : st.mtimeMs);
  if (st?.isDirectory() && made !== undefined && made >= since - 1000) dirs.push(path);
}

// Processes that use them; appliances also say which network they made.
const networks: Array<{ bridge: string; subnet: string; dataDir: string }> = [];
for (const pid of await readdir("/proc").catch(() => [] as string[])) {
  if (!/^\d+$/.test(pid) || Number(pid) === Deno.pid) continue;
  const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
  if (!dirs.some((d) => argv.some((a) => a.includes(d)))) continue;
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const [bridge, subnet, dataDir] = [flag("--bridge"), flag("--subnet"), flag("--data-dir")];
  if (bridge && subnet && dataDir) networks.push({ bridge, subnet, dataDir });
  try {
    Deno.kill(Number(pid), "SIGKILL");
    say(`killed ${pid}: ${argv.filter(Boolean).join(" ").slice(0, 160)}`);
  } catch (err) {
    say(`cannot kill ${pid}: ${(err as Error).message}`);
  }
}

// Namespaces the run made; none when the ones before it are not known ("?").
const before = new Set(values["namespaces-before"].split(",").filter(Boolean));
if (before.has("?")) {
  say("the namespaces before the run are not known: none is purged");
} else {
  await purgeNewNamespaces();
}

async function purgeNewNamespaces(): Promise<void> {
  try {
    const client = await Containerd.connect({ socket: values.socket });
    for (const ns of await client.namespaces.list()) {
      if (before.has(ns.name)) continue;
      const failures = await purgeNamespace(client, ns.name);
      say(`purged namespace ${ns.name}${failures.length ? `; left: ${failures.join("; ")}` : ""}`);
    }
    await client.close();
  } catch (err) {
    say(`containerd: ${(err as Error).message}`);
  }
}

for (const n of networks) {
  await removeTestNetwork({ bridge: n.bridge, subnet: n.subnet }, n.dataDir).catch((err) => {
    say(`network ${n.bridge}: ${(err as Error).message}`);
  });
  say(`removed network ${n.bridge} ${n.subnet}`);
}
// Test bridges (`fdt` and 6 hex digits, tests/fixtures/appliance.ts) whose appliance was between
// two starts when the process died: the subnet is read from the bridge's own address.
const exec = createExec();
const links = await exec("ip", ["-4", "-o", "addr", "show", "type", "bridge"]);
for (const line of links.stdout.split("\n")) {
  const m = /^\d+:\s+(fdt[0-9a-f]{6})\s+inet\s+(\d+\.\d+\.\d+)\.\d+\/24/.exec(line);
  if (!m) continue;
  const [bridge, subnet] = [m[1], `${m[2]}.0/24`];
  await removeSubnetRules({ exec }, { bridge, subnet }).catch(() => {});
  await removeBridge({ exec }, bridge).catch(() => {});
  say(`removed bridge ${bridge} ${subnet}`);
}
await removeFirewallChains({ exec }).catch(() => {});
for (const d of dirs) {
  await rm(d, { recursive: true, force: true }).catch(() => {});
  say(`removed ${d}`);
}
