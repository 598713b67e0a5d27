/**
 * Composition of the provider: data-dir layout, the CNI network, the hosts and resolv.conf files
 * replicas mount, the secret store, namespaces, the function manager and its HTTP routes.
 */

import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gatewayIp, renderConflist } from "../cni/conflist.ts";
import { readCache } from "../cni/cache.ts";
import { createExec } from "../cni/exec.ts";
import { collectNetworkGarbage } from "../cni/gc.ts";
import { enableIpForward } from "../cni/host.ts";
import { createNetns, deleteNetns, loopbackUp, netnsMounted, netnsPath } from "../cni/netns.ts";
import { ensureSubnetRules } from "../cni/subnet_rules.ts";
import { Cni } from "../cni/plugins.ts";
import type { Containerd } from "../containerd/client.ts";
import type { TaskRuntimeOptions } from "../containerd/tasks.ts";
import type { ImageService } from "../images/service.ts";
import type { Logger } from "../log.ts";
import { cgroupFreezer, detectCgroupLayout } from "./freezer.ts";
import { LogCollector } from "./logs.ts";
import { FunctionManager } from "./manager.ts";
import { FunctionNamespaces } from "./namespaces.ts";
import { createProxy } from "./proxy.ts";
import { createProviderHandler } from "./routes.ts";
import { SecretStore } from "./secrets.ts";

/** What the provider is built from. */
export interface ProviderOptions {
  containerd: Containerd;
  images: ImageService;
  dataDir: string;
  bridge: string;
  subnet: string;
  /** DNS servers for functions; the host's resolvers when empty. */
  dns: string[];
  info: { release: string; sha: string; arch: string };
  log: Logger;
  /** How long a request waits for a replica (scale from zero included). */
  readyTimeoutMs?: number;
  upstreamTimeoutMs?: number;
  /** The OCI runtime for replicas (src/provider/oci_runtime.ts); the shim's default when absent. */
  runtime?: TaskRuntimeOptions;
}

/** The network name; host-local keeps its leases under `<ipam dir>/<name>`. */
export const NETWORK_NAME = "faasd-ts";

/**
 * The name prefix of an appliance's replica netns (`<prefix><namespace>.<container ID>`). It
 * carries the owner ID, so appliances sharing a host never prune each other's; it is not
 * "faasd-ts-…", because earlier versions prune every netns so named that they do not know.
 */
export function replicaNetnsPrefix(owner: string): string {
  return `fts-${owner}-`;
}

/** Where the provider keeps its files under the data dir. */
export function providerPaths(dataDir: string) {
  const root = join(dataDir, "provider");
  return {
    root,
    secrets: join(root, "secrets"),
    logDir: join(dataDir, "logs"),
    ipamDir: join(root, "cni", "ipam"),
    cniCache: join(root, "cni", "results"),
    hostsFile: join(root, "hosts"),
    resolvFile: join(root, "resolv.conf"),
  };
}

/** Builds and starts the provider; `close()` stops background work (replicas keep running). */
export async function startProvider(opts: ProviderOptions) {
  const log = opts.log.child({ component: "provider" });
  const paths = providerPaths(opts.dataDir);
  for (const dir of [paths.root, paths.logDir, paths.ipamDir, paths.cniCache]) {
    await mkdir(dir, { recursive: true });
  }
  await mkdir(paths.secrets, { recursive: true, mode: 0o700 });
  const exec = createExec();
  await enableIpForward({ exec });
  const conflist = renderConflist({
    name: NETWORK_NAME,
    bridge: opts.bridge,
    subnet: opts.subnet,
    ipamDir: paths.ipamDir,
    perReplicaRules: false,
  });
  await ensureSubnetRules({ exec }, { subnet: opts.subnet, bridge: opts.bridge });
  // Each replica's pinned netns is created with lo up, so no loopback plugin run.
  // A replica's CNI ADD runs while containerd creates its task, on the same cores: at a lower
  // priority it leaves them to the task's creation first (about 5 ms less per deploy on 2 cores)
  // and still finishes before the task starts.
  const nice = ["/usr/bin/nice", "/bin/nice"].find((p) => existsSync(p));
  const cni = new Cni({
    conflist,
    cacheDir: paths.cniCache,
    exec,
    log,
    loopback: false,
    addNice: nice ? { nice, niceness: 10 } : undefined,
  });
  await writeFile(paths.hostsFile, hostsFile(gatewayIp(opts.subnet)));
  await writeFile(paths.resolvFile, await resolvConf(opts.dns, log));

  const secrets = new SecretStore(paths.secrets);
  const logs = new LogCollector(paths.logDir, log);
  const namespaces: FunctionNamespaces = new FunctionNamespaces({
    namespaces: opts.containerd.namespaces,
    images: opts.containerd.images,
    // Called only after start-up, when `manager` below exists.
    hasFunctions: (ns) => manager.hasFunctions(ns),
  });
  const owner = await ownerId(paths.root);
  const netnsPrefix = replicaNetnsPrefix(owner);
  const manager: FunctionManager = new FunctionManager({
    containerd: opts.containerd,
    images: opts.images,
    network: {
      add: (id, netns) => cni.add(id, netns),
      del: (id, netns) => cni.del(id, netns),
      netnsPath: (id) => netnsPath(netnsPrefix + id),
      createNetns: async (id) => {
        await createNetns({ exec }, netnsPrefix + id);
      },
      netnsExists: (id) => netnsMounted(netnsPrefix + id),
      loopbackUp: (id) => loopbackUp({ exec }, netnsPrefix + id),
      removeNetns: async (id) => {
        await deleteNetns({ exec }, netnsPrefix + id);
      },
      cachedIp: async (id) => {
        const entry = await readCache(paths.cniCache, id);
        const address = entry?.result.ips?.[0]?.address;
        return address?.split("/")[0];
      },
    },
    secrets,
    checkNamespace: (ns) => namespaces.check(ns),
    paths,
    log,
    readyTimeoutMs: opts.readyTimeoutMs,
    owner,
    freezer: cgroupFreezer(await detectCgroupLayout(), opts.containerd.tasks),
    runtime: opts.runtime,
  });
  await manager.start();
  logs.start();
  // Whatever networking belongs to no replica now (a crash, a reboot) is released.
  await collectNetworkGarbage({ cni, exec, log }, {
    ipamDir: paths.ipamDir,
    cacheDir: paths.cniCache,
    networkName: NETWORK_NAME,
    subnet: opts.subnet,
    netnsPrefix,
    live: manager.liveNetworkIds(),
  }).catch((err) => log.warn("network clean-up failed", { err: String(err) }));
  const fns = manager;
  const proxy = createProxy(fns, {
    readyTimeoutMs: opts.readyTimeoutMs ?? 60_000,
    upstreamTimeoutMs: opts.upstreamTimeoutMs ?? 65_000,
  });
  const handler = createProviderHandler({
    functions: {
      list: (ns) => fns.list(ns),
      get: (name, ns, o) => fns.get(name, ns, o),
      deploy: (b) => fns.deploy(b),
      update: (b) => fns.update(b),
      remove: async (name, ns) => {
        await fns.remove(name, ns);
        await logs.remove(ns, name);
      },
      scale: (name, ns, n) => fns.scale(name, ns, n),
      checkNamespace: (ns) => namespaces.check(ns),
    },
    namespaces,
    secrets,
    logs,
    proxy: (req, name, ns, path) => proxy(req, name, ns, path),
    info: opts.info,
    log,
  });
  return {
    handler,
    manager: fns,
    /** Calls a function through the proxy (what `/function/…` does), for the gateway. */
    proxy,
    secrets,
    namespaces,
    logs,
    /** This appliance's ID, which its replicas and services carry. */
    owner,
    /** The replicas' CNI network, which the extra services join (src/supervisor/). */
    cni,
    close: () => {
      fns.close();
      logs.close();
    },
  };
}

/**
 * This appliance's ID, made once and kept in the data dir: several appliances (or tests) sharing
 * one containerd each adopt only their own replicas.
 */
export async function ownerId(dir: string): Promise<string> {
  const file = join(dir, "owner");
  const existing = (await readFile(file, "utf8").catch(() => "")).trim();
  if (/^[a-z0-9-]{8,64}$/.test(existing)) return existing;
  const id = randomUUID();
  await writeFile(file, id + "\n", { mode: 0o600 });
  return id;
}

/** The /etc/hosts replicas get: localhost, and the gateway under a stable name. */
export function hostsFile(gateway: string): string {
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${gateway}\tfaasd-gateway gateway\n`;
}

/**
 * The resolv.conf replicas get: the given servers, else the host's — except loopback resolvers
 * (systemd-resolved's 127.0.0.53), which a replica cannot reach; then systemd-resolved's upstream
 * list is used if present.
 */
export async function resolvConf(dns: string[], log: Logger): Promise<string> {
  if (dns.length > 0) return dns.map((s) => `nameserver ${s}\n`).join("");
  for (const file of ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"]) {
    const text = await readFile(file, "utf8").catch(() => "");
    const servers = [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1])
      .filter((ip) => !ip.startsWith("127.") && ip !== "::1");
    if (servers.length > 0) {
      const search = text.match(/^\s*search\s+.*$/m)?.[0];
      return servers.map((s) => `nameserver ${s}\n`).join("") +
        (search ? `${search.trim()}\n` : "");
    }
  }
  log.warn("no usable DNS server on this host; functions will not resolve names (use --dns)");
  return "";
}
