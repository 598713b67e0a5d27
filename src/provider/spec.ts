/**
 * The OCI runtime spec of one function replica: containerd 1.6's default Linux spec (the one
 * `ctr run` sends, verified with runc 1.1.5) narrowed for functions — the image's process, the
 * deployment's env and limits, the CNI network namespace, the host's /etc/hosts and
 * /etc/resolv.conf, and each requested secret, all read-only.
 */

import { join } from "node:path";
import { InvalidArgumentError } from "../errors.ts";
import { cpuResources, type LinuxCpu, parseCpu, parseMemory } from "./quantity.ts";
import type { FunctionDeployment } from "./types.ts";

/** The process fields of an image config (`config` in the image config JSON); any may be null. */
export interface ImageProcessConfig {
  Env?: string[] | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string | null;
  User?: string | null;
}

/** What buildSpec needs to know about one replica. */
export interface SpecOptions {
  /** The container ID (see containerId in function_record.ts). */
  id: string;
  /** The containerd namespace, which also names the cgroup parent. */
  namespace: string;
  deployment: FunctionDeployment;
  imageConfig: ImageProcessConfig;
  /** A network namespace CNI has set up for this replica; empty to let runc create one. */
  netnsPath: string;
  hostsPath: string;
  resolvPath: string;
  /** The host directory holding this namespace's secret files; needed when secrets are requested. */
  secretsDir?: string;
  /** Defaults to the deployment's readOnlyRootFilesystem. */
  readOnlyRootFilesystem?: boolean;
  memoryBytes?: number;
  cpu?: LinuxCpu;
  /** Spec annotations, e.g. the record from encodeRecord. */
  annotations?: Record<string, string>;
  /** The image's /etc/passwd text, to resolve a USER given by name (optional). */
  etcPasswd?: string;
  /** The image's /etc/group text, to resolve a group name and supplementary groups (optional). */
  etcGroup?: string;
}

/** An OCI `process.user`. */
export interface OciUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

/** Where secrets appear inside a function, one read-only file per secret. */
export const SECRETS_MOUNT_DIR = "/var/openfaas/secrets";

/** The PATH a function gets when its image sets none (containerd's default). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The most processes (threads included) one replica may run, so a fork bomb stays inside it. */
export const PIDS_LIMIT = 1024;

// containerd's 14 default capabilities minus CAP_NET_RAW: replicas share the openfaas0 bridge,
// and raw sockets would let one replica spoof ARP or DNS for its neighbours (the reason
// Kubernetes' restricted policy drops it too). Only ping-style tools miss it.
// CAP_NET_BIND_SERVICE stays so a root process may still bind to a port below 1024.
const CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** Kernel files a container must not see (masked) or change (read-only): the usual OCI set. */
export const MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/sys/firmware",
  "/proc/scsi",
] as const;
export const READONLY_PATHS = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
] as const;

const TMPFS = ["nosuid", "strictatime", "mode=755", "size=65536k"];
const NOSUID_NOEXEC_NODEV = ["nosuid", "noexec", "nodev"];
const READ_ONLY_BIND = ["rbind", "ro"];
const MAX_ID = 2 ** 32 - 2;

/** The memory and cpu settings a deployment's limits and requests ask for. */
/** A replica's cgroup, under one parent per containerd namespace (the freezer writes to it). */
export function replicaCgroupsPath(namespace: string, id: string): string {
  return `/${namespace}/${id}`;
}

export function specResources(dep: FunctionDeployment): { memoryBytes?: number; cpu?: LinuxCpu } {
  const out: { memoryBytes?: number; cpu?: LinuxCpu } = {};
  if (dep.limits?.memory) out.memoryBytes = parseMemory(dep.limits.memory, "limits.memory");
  const cpu = cpuResources(
    dep.limits?.cpu ? parseCpu(dep.limits.cpu, "limits.cpu") : undefined,
    dep.requests?.cpu ? parseCpu(dep.requests.cpu, "requests.cpu") : undefined,
  );
  if (cpu) out.cpu = cpu;
  return out;
}

/** Builds the OCI runtime spec of one replica; InvalidArgumentError when the image cannot be run as given. */
export function buildSpec(opts: SpecOptions): Record<string, unknown> {
  const dep = opts.deployment;
  const image = opts.imageConfig ?? {};
  const args = [
    ...strings(image.Entrypoint, "Entrypoint"),
    ...strings(image.Cmd, "Cmd"),
  ];
  if (args.length === 0) {
    throw new InvalidArgumentError(
      `cannot run function "${dep.service}": image "${dep.image}" sets neither Entrypoint nor Cmd`,
    );
  }
  const readOnly = opts.readOnlyRootFilesystem ?? dep.readOnlyRootFilesystem === true;

  const resources: Record<string, unknown> = {
    devices: [{ allow: false, access: "rwm" }],
    pids: { limit: PIDS_LIMIT },
  };
  if (opts.memoryBytes !== undefined) resources.memory = { limit: opts.memoryBytes };
  if (opts.cpu) resources.cpu = { ...opts.cpu };

  return {
    ociVersion: "1.0.2-dev",
    process: {
      terminal: false,
      user: resolveUser(image.User ?? "", opts.etcPasswd, opts.etcGroup),
      args,
      env: processEnv(image, dep),
      cwd: image.WorkingDir || "/",
      capabilities: {
        bounding: CAPABILITIES,
        effective: CAPABILITIES,
        permitted: CAPABILITIES,
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: readOnly },
    hostname: dep.service,
    mounts: mounts(opts, readOnly),
    ...(opts.annotations ? { annotations: { ...opts.annotations } } : {}),
    linux: {
      resources,
      cgroupsPath: replicaCgroupsPath(opts.namespace, opts.id),
      namespaces: [
        { type: "pid" },
        { type: "ipc" },
        { type: "uts" },
        { type: "mount" },
        // Without a path runc makes a fresh network namespace (CNI wires it before start).
        opts.netnsPath ? { type: "network", path: opts.netnsPath } : { type: "network" },
      ],
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
}

/**
 * Resolves an image USER (`uid`, `uid:gid`, `name`, `name:group`) to ids. Names need the image's
 * /etc/passwd and /etc/group text; without it only "root" resolves. A uid with no passwd entry
 * gets gid 0, as containerd's WithUserID does.
 */
export function resolveUser(user: string, etcPasswd?: string, etcGroup?: string): OciUser {
  if (user === "") return { uid: 0, gid: 0 };
  const colon = user.indexOf(":");
  const userPart = colon < 0 ? user : user.slice(0, colon);
  const groupPart = colon < 0 ? undefined : user.slice(colon + 1);
  const passwd = parseDatabase(etcPasswd);
  const groups = parseDatabase(etcGroup);
  const fail = (what: string, name: string): never => {
    throw new InvalidArgumentError(
      `cannot resolve image USER "${user}": ${what} "${name}" is not in the image's /etc/${
        what === "user" ? "passwd" : "group"
      }; use a numeric USER such as "1000:1000"`,
    );
  };

  const numericUid = numericId(userPart, user);
  const entry = numericUid === undefined
    ? passwd.find((f) => f[0] === userPart)
    : passwd.find((f) => numericId(f[2] ?? "", user) === numericUid);
  let uid = numericUid;
  if (uid === undefined) {
    if (entry) uid = numericId(entry[2] ?? "", user);
    else if (userPart === "root") uid = 0;
    if (uid === undefined) return fail("user", userPart);
  }

  let gid: number | undefined;
  if (groupPart !== undefined) {
    gid = numericId(groupPart, user);
    if (gid === undefined) {
      const g = groups.find((f) => f[0] === groupPart);
      if (g) gid = numericId(g[2] ?? "", user);
      else if (groupPart === "root") gid = 0;
      if (gid === undefined) return fail("group", groupPart);
    }
  } else {
    gid = (entry && numericId(entry[3] ?? "", user)) ?? 0;
  }

  // Supplementary groups: the primary one plus every group listing the user by name.
  const name = entry?.[0];
  const additional = new Set<number>([gid]);
  if (name) {
    for (const g of groups) {
      const members = (g[3] ?? "").split(",");
      const id = numericId(g[2] ?? "", user);
      if (id !== undefined && members.includes(name)) additional.add(id);
    }
  }
  return { uid, gid, additionalGids: [...additional] };
}

function processEnv(image: ImageProcessConfig, dep: FunctionDeployment): string[] {
  // Later sources override earlier ones by name; an overridden entry keeps its place.
  const env = new Map<string, string>();
  const set = (entry: string) => {
    const eq = entry.indexOf("=");
    env.set(eq < 0 ? entry : entry.slice(0, eq), entry);
  };
  set(`PATH=${DEFAULT_PATH}`);
  for (const entry of strings(image.Env, "Env")) set(entry);
  for (const [name, value] of Object.entries(dep.envVars ?? {})) set(`${name}=${value}`);
  if (dep.envProcess) set(`fprocess=${dep.envProcess}`);
  return [...env.values()];
}

function mounts(opts: SpecOptions, readOnly: boolean): Array<Record<string, unknown>> {
  const list: Array<Record<string, unknown>> = [
    { destination: "/proc", type: "proc", source: "proc", options: NOSUID_NOEXEC_NODEV },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: TMPFS },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: [...NOSUID_NOEXEC_NODEV, "mode=1777", "size=65536k"],
    },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: NOSUID_NOEXEC_NODEV },
    {
      destination: "/sys",
      type: "sysfs",
      source: "sysfs",
      options: [...NOSUID_NOEXEC_NODEV, "ro"],
    },
    { destination: "/run", type: "tmpfs", source: "tmpfs", options: TMPFS },
  ];
  // A read-only root still needs somewhere to write: the classic watchdog's /tmp/.lock, for one.
  // Its pages count against the replica's memory limit.
  if (readOnly) {
    list.push({
      destination: "/tmp",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "nodev", "mode=1777"],
    });
  }
  list.push(
    { destination: "/etc/hosts", type: "bind", source: opts.hostsPath, options: READ_ONLY_BIND },
    {
      destination: "/etc/resolv.conf",
      type: "bind",
      source: opts.resolvPath,
      options: READ_ONLY_BIND,
    },
  );
  const secrets = opts.deployment.secrets ?? [];
  if (secrets.length > 0 && !opts.secretsDir) {
    throw new InvalidArgumentError(
      `cannot mount secrets of function "${opts.deployment.service}": no secrets directory given`,
    );
  }
  for (const name of secrets) {
    list.push({
      destination: `${SECRETS_MOUNT_DIR}/${name}`,
      type: "bind",
      source: join(opts.secretsDir!, name),
      options: READ_ONLY_BIND,
    });
  }
  return list;
}

function strings(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
    throw new InvalidArgumentError(`image config ${field} must be a list of strings`);
  }
  return v;
}

function numericId(s: string, user: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > MAX_ID) {
    throw new InvalidArgumentError(`cannot resolve image USER "${user}": id ${s} is too large`);
  }
  return n;
}

// passwd and group files: one record per line, fields separated by ":", "#" comments.
function parseDatabase(text: string | undefined): string[][] {
  if (!text) return [];
  return text.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map((l) => l.split(":"));
}
