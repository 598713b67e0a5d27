/**
 * What `faasd service ls` shows, read from containerd and the CNI cache (it runs in its own
 * process, not in the appliance): each service's image, state, pid, IP and restart count.
 */

import { readCache } from "../cni/cache.ts";
import type { Containers } from "../containerd/containers.ts";
import type { Tasks } from "../containerd/tasks.ts";
import { NotFoundError } from "../errors.ts";
import { networkId } from "../provider/replica.ts";
import type { ServiceSpec } from "./compose.ts";
import { EXIT_LABEL, IMAGE_LABEL, RESTARTS_LABEL, SERVICE_LABEL } from "./labels.ts";

/** One line of `faasd service ls`. */
export interface ServiceRow {
  name: string;
  image: string;
  /** running, paused, restarting, exited (N), or stopped (configured, no container). */
  status: string;
  pid?: number;
  ip?: string;
  restarts: number;
}

/** The configured services (in start order), then any other service container in the namespace. */
export async function listServices(
  deps: { containers: Pick<Containers, "list">; tasks: Pick<Tasks, "list"> },
  opts: { namespace: string; cacheDir: string; configured: ServiceSpec[] },
): Promise<ServiceRow[]> {
  const ns = opts.namespace;
  const orEmpty = <T>(err: unknown): T[] => {
    if (err instanceof NotFoundError) return [];
    throw err;
  };
  const containers = await deps.containers.list(ns, [`labels."${SERVICE_LABEL}"`])
    .catch(orEmpty<Awaited<ReturnType<Containers["list"]>>[number]>);
  const tasks = new Map(
    (await deps.tasks.list(ns).catch(orEmpty<Awaited<ReturnType<Tasks["list"]>>[number]>))
      .map((t) => [t.id, t]),
  );
  const rows: ServiceRow[] = [];
  for (const c of containers) {
    const task = tasks.get(c.id);
    let status = "restarting";
    if (task?.status === "RUNNING") status = "running";
    else if (task?.status === "PAUSED") status = "paused";
    else if (task?.status === "STOPPED") status = `exited (${task.exitStatus})`;
    else if (task) status = task.status.toLowerCase();
    else if (c.labels[EXIT_LABEL]) status = `exited (${c.labels[EXIT_LABEL]})`;
    const running = task?.status === "RUNNING" || task?.status === "PAUSED";
    const cached = running ? await readCache(opts.cacheDir, networkId(ns, c.id)) : undefined;
    rows.push({
      name: c.id,
      image: c.labels[IMAGE_LABEL] ?? c.image,
      status,
      pid: running ? task?.pid : undefined,
      ip: cached?.result.ips?.[0]?.address.split("/")[0],
      restarts: Number(c.labels[RESTARTS_LABEL] ?? 0),
    });
  }
  const byName = new Map(rows.map((r) => [r.name, r]));
  const out: ServiceRow[] = opts.configured.map((s) =>
    byName.get(s.name) ?? { name: s.name, image: s.image, status: "stopped", restarts: 0 }
  );
  const configured = new Set(opts.configured.map((s) => s.name));
  return [...out, ...rows.filter((r) => !configured.has(r.name))];
}

/** Renders rows as an aligned table with a header. */
export function renderServiceTable(rows: ServiceRow[]): string {
  const table = [
    ["NAME", "IMAGE", "STATUS", "PID", "IP", "RESTARTS"],
    ...rows.map((r) => [
      r.name,
      r.image,
      r.status,
      r.pid ? String(r.pid) : "-",
      r.ip ?? "-",
      String(r.restarts),
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  return table.map((row) => row.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd() + "\n")
    .join("");
}
