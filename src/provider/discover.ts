/**
 * What containerd holds of our functions, read back after the appliance starts: every container
 * with a function record, grouped by function, the newest generation separated from leftovers of
 * an interrupted update.
 */

import type { Containers } from "../containerd/containers.ts";
import type { Namespaces } from "../containerd/namespaces.ts";
import type { Logger } from "../log.ts";
import { decodeRecord, FUNCTION_LABEL } from "./function_record.ts";
import type { FunctionDeployment } from "./types.ts";

/** One function found in containerd. */
export interface FoundFunction {
  namespace: string;
  deployment: FunctionDeployment;
  generation: number;
  createdAt: Date;
  /** The desired count from the label, or the number of current replicas. */
  desired: number;
  /** Replicas of the newest generation. */
  current: Array<{ id: string; replica: number }>;
  /** Replicas of older generations, to be removed. */
  stale: Array<{ id: string; replica: number }>;
}

/** The label naming the appliance (its data dir's owner ID) that created a replica. */
export const OWNER_LABEL = "io.faasd-ts.owner";

/**
 * Lists the functions this appliance (`owner`) created, in every containerd namespace; damaged
 * records are logged and skipped. Another appliance's replicas on the same containerd are left
 * alone.
 */
export async function discoverFunctions(
  deps: { namespaces: Pick<Namespaces, "list">; containers: Pick<Containers, "list">; log: Logger },
  opts: { desiredLabel: string; owner: string },
): Promise<FoundFunction[]> {
  const desiredLabel = opts.desiredLabel;
  const out: FoundFunction[] = [];
  for (const { name: namespace } of await deps.namespaces.list()) {
    const containers = await deps.containers.list(namespace, [
      `labels."${FUNCTION_LABEL}",labels."${OWNER_LABEL}"==${opts.owner}`,
    ]);
    const byName = new Map<
      string,
      Array<{ id: string; labels: Record<string, string>; rec: ReturnType<typeof decodeRecord> }>
    >();
    for (const ctr of containers) {
      try {
        const rec = decodeRecord(
          ctr.labels,
          ctr.spec.annotations as Record<string, string> | undefined,
        );
        const list = byName.get(rec.deployment.service) ?? [];
        list.push({ id: ctr.id, labels: ctr.labels, rec });
        byName.set(rec.deployment.service, list);
      } catch (err) {
        deps.log.warn("skipping container with a damaged record", {
          container: ctr.id,
          err: String(err),
        });
      }
    }
    for (const list of byName.values()) {
      const generation = Math.max(...list.map((x) => x.rec.generation));
      const current = list.filter((x) => x.rec.generation === generation);
      const newest = current[0];
      out.push({
        namespace,
        deployment: newest.rec.deployment,
        generation,
        createdAt: newest.rec.createdAt,
        desired: Number(newest.labels[desiredLabel] ?? current.length),
        current: current.map((x) => ({ id: x.id, replica: x.rec.replica })),
        stale: list.filter((x) => x.rec.generation !== generation)
          .map((x) => ({ id: x.id, replica: x.rec.replica })),
      });
    }
  }
  return out;
}
