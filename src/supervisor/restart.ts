/**
 * `faasd service restart`: marks the container with a restart request, stops its task (SIGTERM,
 * then SIGKILL after the grace period) and waits for the running appliance's supervisor to
 * start a new one. It runs in its own process, so all it shares with the supervisor is
 * containerd's state.
 */

import { randomUUID } from "node:crypto";
import type { Containers } from "../containerd/containers.ts";
import type { Tasks } from "../containerd/tasks.ts";
import { NotFoundError, TimeoutError } from "../errors.ts";
import { RESTART_REQUEST_LABEL, SERVICE_LABEL } from "./labels.ts";

/** Restarts a service and resolves with the new task's pid. */
export async function restartService(
  deps: {
    containers: Pick<Containers, "get" | "setLabels">;
    tasks: Pick<Tasks, "get" | "kill" | "wait">;
  },
  opts: { namespace: string; name: string; graceMs?: number; timeoutMs?: number },
): Promise<number> {
  const { namespace: ns, name } = opts;
  const notRunning = () =>
    new NotFoundError(
      `service "${name}" has no container in namespace "${ns}": is "faasd up" running with it in docker-compose.yaml?`,
    );
  const c = await deps.containers.get(ns, name).catch((err) => {
    throw err instanceof NotFoundError ? notRunning() : err;
  });
  if (!c.labels[SERVICE_LABEL]) throw notRunning();
  const old = await deps.tasks.get(ns, name).catch((err) => {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  });
  await deps.containers.setLabels(ns, name, { [RESTART_REQUEST_LABEL]: randomUUID() });
  if (old && old.status !== "STOPPED") {
    const exited = deps.tasks.wait(ns, name);
    exited.catch(() => {});
    await deps.tasks.kill(ns, name, 15).catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gone = await Promise.race([
      exited.then(() => true, () => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), opts.graceMs ?? 10_000)),
    ]);
    // A pending timer would hold this short-lived process open for the whole grace period.
    clearTimeout(timer);
    if (!gone) await deps.tasks.kill(ns, name, 9, { all: true }).catch(() => {});
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    const t = await deps.tasks.get(ns, name).catch(() => undefined);
    if (t && t.status === "RUNNING" && t.pid !== old?.pid) return t.pid;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new TimeoutError(
    `service "${name}" was stopped but not started again within ${
      (opts.timeoutMs ?? 60_000) / 1000
    } s: is "faasd up" running? (see its log)`,
  );
}
