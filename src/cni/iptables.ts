/**
 * The iptables state the bridge and firewall plugins leave behind, and its removal. Per replica,
 * bridge's ipMasq adds `nat POSTROUTING -s <ip> -j CNI-<hash>` and the chain `CNI-<hash>`, both
 * commented `name: "<net>" id: "<container>"`; firewall adds `filter CNI-FORWARD` accept rules
 * for the IP. DEL removes them, except that bridge finds the IP to unmasquerade inside the netns:
 * a netns deleted before DEL leaks the nat rule and chain. Shared and never removed by any DEL:
 * `FORWARD -j CNI-FORWARD`, `CNI-FORWARD -j CNI-ADMIN` and the two chains.
 */

import { createHash } from "node:crypto";
import { parseIpv4, parseSubnet } from "./conflist.ts";
import { type Exec, run } from "./exec.ts";

/** One `-A` line of `iptables-save`, split into arguments. */
export interface SavedRule {
  chain: string;
  /** Everything after `-A <chain>`, ready for `iptables -D <chain> …args`. */
  args: string[];
}

/** One table of `iptables-save` output. */
export interface SavedTable {
  /** User-defined and built-in chains declared with `:`. */
  chains: string[];
  rules: SavedRule[];
}

/** Splits an `iptables-save` line into arguments, undoing its double quotes and backslash escapes. */
export function splitRuleLine(line: string): string[] {
  const args: string[] = [];
  let cur = "";
  let inArg = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === "\\" && i + 1 < line.length) cur += line[++i];
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') {
      quoted = true;
      inArg = true;
    } else if (c === " " || c === "\t") {
      if (inArg) args.push(cur);
      cur = "";
      inArg = false;
    } else {
      cur += c;
      inArg = true;
    }
  }
  if (inArg) args.push(cur);
  return args;
}

/** Parses the output of `iptables-save -t <table>`. */
export function parseSave(text: string): SavedTable {
  const table: SavedTable = { chains: [], rules: [] };
  for (const line of text.split("\n")) {
    if (line.startsWith(":")) table.chains.push(line.slice(1).split(" ")[0]);
    else if (line.startsWith("-A ")) {
      const [, chain, ...args] = splitRuleLine(line);
      table.rules.push({ chain, args });
    }
  }
  return table;
}

/** Reads one table with `iptables-save`. */
export async function saveTable(
  deps: { exec: Exec },
  table: "filter" | "nat",
): Promise<SavedTable> {
  return parseSave(
    await run(deps.exec, `Cannot read the iptables ${table} table`, "iptables-save", ["-t", table]),
  );
}

/** The comment bridge and portmap put on a container's rules (libcni utils.FormatComment). */
export function ruleComment(networkName: string, containerId: string): string {
  return `name: "${networkName}" id: "${containerId}"`;
}

/** The per-container chain name the plugins derive (libcni utils.FormatChainName). */
export function masqChainName(networkName: string, containerId: string): string {
  const hash = createHash("sha512").update(networkName + containerId).digest("hex");
  return `CNI-${hash}`.slice(0, 28);
}

/**
 * Removes the masquerade rules and chains of `networkName` whose container is not in `live`
 * (left when a netns vanished before DEL) and returns those containers' IDs.
 */
export async function pruneMasquerade(
  deps: { exec: Exec },
  opts: { networkName: string; live: ReadonlySet<string> },
): Promise<string[]> {
  const nat = await saveTable(deps, "nat");
  const comment = /^name: "(.*)" id: "(.*)"$/;
  const stale = new Map<string, Set<string>>(); // container ID → its chains
  for (const rule of nat.rules) {
    if (rule.chain !== "POSTROUTING") continue;
    const m = comment.exec(argAfter(rule.args, "--comment") ?? "");
    const target = argAfter(rule.args, "-j");
    if (!m || m[1] !== opts.networkName || opts.live.has(m[2]) || !target?.startsWith("CNI-")) {
      continue;
    }
    await iptables(
      deps,
      "nat",
      ["-D", "POSTROUTING", ...rule.args],
      `Cannot remove "${m[2]}"'s masquerade rule`,
    );
    if (!stale.has(m[2])) stale.set(m[2], new Set());
    stale.get(m[2])!.add(target);
  }
  for (const [id, chains] of stale) {
    for (const chain of chains) {
      if (!nat.chains.includes(chain)) continue;
      await iptables(deps, "nat", ["-F", chain], `Cannot flush "${id}"'s chain ${chain}`);
      await iptables(deps, "nat", ["-X", chain], `Cannot delete "${id}"'s chain ${chain}`);
    }
  }
  return [...stale.keys()].sort();
}

/**
 * Removes the firewall plugin's `CNI-FORWARD` accept rules for addresses in `subnet` that are not
 * in `keep` (left when DEL ran without the cached result) and returns those addresses.
 */
export async function pruneForwardRules(
  deps: { exec: Exec },
  opts: { subnet: string; keep: ReadonlySet<string> },
): Promise<string[]> {
  const net = parseSubnet(opts.subnet);
  const mask = (0xffffffff << (32 - net.prefix)) >>> 0;
  const removed = new Set<string>();
  for (const rule of (await saveTable(deps, "filter")).rules) {
    if (rule.chain !== "CNI-FORWARD") continue;
    const cidr = argAfter(rule.args, "-s") ?? argAfter(rule.args, "-d");
    const ip = cidr?.endsWith("/32") ? cidr.slice(0, -3) : undefined;
    const n = ip === undefined ? undefined : parseIpv4(ip);
    if (n === undefined || ((n & mask) >>> 0) !== net.network || opts.keep.has(ip!)) continue;
    await iptables(
      deps,
      "filter",
      ["-D", "CNI-FORWARD", ...rule.args],
      `Cannot remove the forward rule for ${ip}`,
    );
    removed.add(ip!);
  }
  return [...removed].sort();
}

/**
 * Removes the firewall plugin's shared chains (`CNI-FORWARD`, `CNI-ADMIN` and the jump from
 * FORWARD), but only when they hold nothing besides the plugin's own scaffolding, since other CNI
 * users on the host share them; reports whether they were removed.
 */
export async function removeFirewallChains(deps: { exec: Exec }): Promise<boolean> {
  const filter = await saveTable(deps, "filter");
  if (!filter.chains.includes("CNI-FORWARD")) return false;
  const forward = filter.rules.filter((r) => r.chain === "CNI-FORWARD");
  const admin = filter.rules.filter((r) => r.chain === "CNI-ADMIN");
  const onlyAdminJump = forward.every((r) => argAfter(r.args, "-j") === "CNI-ADMIN");
  if (!onlyAdminJump || admin.length > 0) return false;
  for (const r of filter.rules.filter((r) => r.chain === "FORWARD")) {
    if (argAfter(r.args, "-j") === "CNI-FORWARD") {
      await iptables(
        deps,
        "filter",
        ["-D", "FORWARD", ...r.args],
        "Cannot remove the FORWARD jump to CNI-FORWARD",
      );
    }
  }
  // Deleting the one known rule (rather than -F) keeps a rule added meanwhile, and makes -X fail.
  for (const r of forward) {
    await iptables(deps, "filter", ["-D", "CNI-FORWARD", ...r.args], "Cannot empty CNI-FORWARD");
  }
  await iptables(deps, "filter", ["-X", "CNI-FORWARD"], "Cannot delete the chain CNI-FORWARD");
  if (filter.chains.includes("CNI-ADMIN")) {
    await iptables(deps, "filter", ["-X", "CNI-ADMIN"], "Cannot delete the chain CNI-ADMIN");
  }
  return true;
}

function argAfter(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

async function iptables(deps: { exec: Exec }, table: string, args: string[], action: string) {
  // -w waits for the xtables lock instead of failing while a plugin holds it.
  await run(deps.exec, action, "iptables", ["-w", "-t", table, ...args]);
}
