/**
 * The function manager: deploys functions as replicas on containerd, scales them (to zero by
 * pausing one replica, back by resuming it), rolls updates out behind readiness checks, restarts
 * crashed replicas, re-adopts everything after a restart, and keeps the in-memory routing table
 * the proxy reads without a containerd round trip.
 */

import type { Containerd } from "../containerd/client.ts";
import type { TaskRuntimeOptions } from "../containerd/tasks.ts";
import type { ContainerdEvent } from "../containerd/events.ts";
import type { Mount } from "../containerd/types.ts";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "../errors.ts";
import type { PullPolicy } from "../images/service.ts";
import { parsePullPolicy, PULL_POLICY_LABEL } from "../images/service.ts";
import type { Logger } from "../log.ts";
import { containerId, encodeRecord, toFunctionStatus } from "./function_record.ts";
import { discoverFunctions, OWNER_LABEL } from "./discover.ts";
import { userDatabase } from "./image_files.ts";
import { graceMs, scaleBounds, upstreamTimeoutMs } from "./scale_labels.ts";
import { cgroupFreezer, type Freezer } from "./freezer.ts";
import { followTaskExits } from "./task_exits.ts";
import { waitReady } from "./readiness.ts";
import {
  createReplicaContainer,
  freezerTarget,
  logFile,
  type Network,
  networkId,
  type PendingNetwork,
  releaseReplicaNetwork,
  removeReplicaContainer,
  type ReplicaDeps,
  type ReplicaRef,
  setUpReplicaNetwork,
  specNetnsPath,
  startReplicaTask,
  stopReplicaTask,
} from "./replica.ts";
import type { SecretStore } from "./secrets.ts";
import { buildSpec, type ImageProcessConfig, specResources } from "./spec.ts";
import type { FunctionDeployment, FunctionStatus } from "./types.ts";
import { DEFAULT_NAMESPACE } from "./types.ts";
import { validateDeployment } from "./validate.ts";

/**
 * The runc shim runs every container whose spec carries the same value of this annotation in one
 * process, so a namespace's replicas share one shim instead of paying ~10 MB each.
 */
export const SHIM_GROUP_ANNOTATION = "io.containerd.runc.v2.group";

/** Label on every replica with the function's desired replica count, so it survives restarts. */
export const DESIRED_LABEL = "io.faasd-ts.desired";

/** What the manager needs to reach an image: pull (by policy) and read its run config. */
export interface ImageSource {
  ensure(
    ref: string,
    opts: { namespace: string; policy: PullPolicy },
  ): Promise<{ name: string; chainId: string; runConfig: Record<string, unknown> }>;
  /** What ensure() would return without pulling, if known for sure; reads only. */
  known?(
    ref: string,
    opts: { namespace: string },
  ): Promise<{ name: string; chainId: string; runConfig: Record<string, unknown> } | undefined>;
}

/** Dependencies of the manager. */
export interface ManagerDeps {
  containerd: Containerd;
  images: ImageSource;
  network: Network & { cachedIp(networkId: string): Promise<string | undefined> };
  secrets: SecretStore;
  /** Throws NotFoundError unless functions may use the namespace. */
  checkNamespace(namespace: string): Promise<void>;
  paths: { logDir: string; hostsFile: string; resolvFile: string };
  log: Logger;
  /** How long a new replica may take to accept connections (default 60 s). */
  readyTimeoutMs?: number;
  /** This appliance's ID; its replicas carry it, and only those are adopted after a restart. */
  owner: string;
  /** Freezes idle replicas (default: containerd's Pause and Resume). */
  freezer?: Freezer;
  /** The OCI runtime for new replicas' tasks (default: the shim's, runc). */
  runtime?: TaskRuntimeOptions;
}

type ReplicaState = "starting" | "ready" | "paused" | "stopping" | "crashed";

interface Replica {
  index: number;
  ref: ReplicaRef;
  state: ReplicaState;
  ip?: string;
  pid?: number;
  inflight: number;
  restarts: number;
  startedAt: number;
  restartTimer?: ReturnType<typeof setTimeout>;
  /** The snapshot's mounts, known once a task was created: a restart needs no round trip. */
  mounts?: Mount[];
}

interface Fn {
  name: string;
  namespace: string;
  deployment: FunctionDeployment;
  generation: number;
  createdAt: Date;
  desired: number;
  replicas: Replica[];
  image?: {
    name: string;
    chainId: string;
    config: ImageProcessConfig;
    etcPasswd?: string;
    etcGroup?: string;
  };
  rr: number;
  invocations: number;
  lock: Promise<unknown>;
  waiters: Set<() => void>;
  deleted: boolean;
}

/** A replica chosen for one request; call `release()` when the response is done. */
export interface Route {
  ip: string;
  port: number;
  /** The function's own upstream timeout (`com.openfaas.timeout`), when it sets one. */
  timeoutMs?: number;
  release(): void;
}

const FUNCTION_PORT = 8080;

/** The function manager. */
export class FunctionManager {
  readonly #deps: ManagerDeps;
  readonly #log: Logger;
  readonly #freezer: Freezer;
  readonly #fns = new Map<string, Fn>();
  readonly #stop = new AbortController();
  #invocationCount?: (name: string, namespace: string) => number;

  constructor(deps: ManagerDeps) {
    this.#deps = deps;
    this.#log = deps.log.child({ component: "provider" });
    this.#freezer = deps.freezer ?? cgroupFreezer(undefined, deps.containerd.tasks);
  }

  /** Re-adopts the replicas containerd holds and starts following its events. */
  async start(): Promise<void> {
    await this.#adopt();
    void this.#followEvents();
  }

  /** Stops following events and pending restarts; replicas keep running. */
  close(): void {
    this.#stop.abort();
    for (const fn of this.#fns.values()) {
      for (const r of fn.replicas) clearTimeout(r.restartTimer);
    }
  }

  /** Whether any function is deployed in a namespace. */
  hasFunctions(namespace: string): boolean {
    return [...this.#fns.values()].some((f) => f.namespace === namespace && !f.deleted);
  }

  /** Lists a namespace's functions. */
  list(namespace: string): Promise<FunctionStatus[]> {
    const out = [...this.#fns.values()]
      .filter((f) => f.namespace === namespace && !f.deleted)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((f) => this.#status(f));
    return Promise.resolve(out);
  }

  /** One function's status, with usage from task metrics when asked. */
  async get(name: string, namespace: string, opts: { usage: boolean }): Promise<FunctionStatus> {
    const fn = this.#find(name, namespace);
    const status = this.#status(fn);
    if (opts.usage) {
      const ids = fn.replicas.filter((r) => r.state !== "stopping").map((r) => r.ref.id);
      const metrics = ids.length
        ? await this.#deps.containerd.tasks.metrics(namespace, ids).catch(() => [])
        : [];
      status.usage = {
        cpu: metrics.reduce((n, m) => n + m.cpuNanos, 0) / 1e9,
        totalMemoryBytes: metrics.reduce((n, m) => n + m.memoryBytes, 0),
      };
    }
    return status;
  }

  /** Deploys a new function (POST); AlreadyExistsError when it exists. */
  async deploy(body: unknown): Promise<void> {
    const t0 = performance.now();
    const dep = validateDeployment(body, { defaultNamespace: DEFAULT_NAMESPACE });
    const namespace = dep.namespace ?? DEFAULT_NAMESPACE;
    // The image as last seen there (reads only) is looked up while the namespace is checked.
    const [, known] = await Promise.all([
      this.#deps.checkNamespace(namespace),
      this.#knownImage(dep, namespace),
    ]);
    const t1 = performance.now();
    let t2 = t1;
    const key = keyOf(dep.service, namespace);
    if (this.#fns.has(key)) {
      throw new AlreadyExistsError(
        `function "${dep.service}" already exists in namespace "${namespace}"`,
      );
    }
    const { min } = scaleBounds(dep);
    const fn = newFn(dep, namespace, { generation: 1, createdAt: new Date(), desired: min });
    this.#fns.set(key, fn);
    try {
      await this.#locked(fn, async () => {
        await this.#deps.secrets.requireAll(namespace, dep.secrets ?? []);
        fn.image = await this.#image(dep, namespace, known);
        t2 = performance.now();
        const count = Math.max(min, 1);
        const created = await Promise.all(
          Array.from(
            { length: count },
            (_, i) => this.#createReplica(fn, i, fn.generation, dep, fn.image!),
          ),
        );
        fn.replicas = created;
        if (min === 0) await this.#idle(fn);
      });
      const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
      this.#log.info("deployed", {
        function: dep.service,
        namespace,
        replicas: min,
        checkMs: ms(t0, t1),
        imageMs: ms(t1, t2),
        replicasMs: ms(t2, performance.now()),
      });
    } catch (err) {
      this.#fns.delete(key);
      await Promise.all(fn.replicas.map((r) => this.#destroy(r, 0)));
      throw err;
    }
  }

  /** Rolls out a new version (PUT): new replicas ready first, then traffic, then old ones stop. */
  async update(body: unknown): Promise<void> {
    const dep = validateDeployment(body, { defaultNamespace: DEFAULT_NAMESPACE });
    const namespace = dep.namespace ?? DEFAULT_NAMESPACE;
    const fn = this.#find(dep.service, namespace);
    let old: Replica[] = [];
    await this.#locked(fn, async () => {
      await this.#deps.secrets.requireAll(namespace, dep.secrets ?? []);
      const image = await this.#image(dep, namespace);
      const generation = fn.generation + 1;
      const { max } = scaleBounds(dep);
      const count = Math.min(Math.max(fn.desired, 1), max);
      const fresh: Replica[] = [];
      try {
        for (let i = 0; i < count; i++) {
          fresh.push(
            await this.#createReplica(fn, i, generation, dep, image, { desired: fn.desired }),
          );
        }
        await Promise.all(fresh.map((r) => this.#whenReady(fn, r)));
      } catch (err) {
        await Promise.all(fresh.map((r) => this.#destroy(r, 0)));
        throw new FailedPreconditionError(
          `update of "${dep.service}" stopped, the running version stays: ${
            (err as Error).message
          }`,
          { cause: err },
        );
      }
      old = fn.replicas;
      for (const r of old) r.state = "stopping";
      Object.assign(fn, { deployment: dep, generation, image, replicas: fresh });
      if (fn.desired === 0) await this.#idle(fn);
      this.#notify(fn);
    });
    this.#log.info("updated", { function: dep.service, namespace, generation: fn.generation });
    // Let requests already on old replicas finish before they are asked to stop.
    void Promise.all(old.map(async (r) => {
      await drain(r, 30_000);
      await this.#destroy(r, graceMs(fn.deployment));
    }));
  }

  /** Sets the replica count; 0 pauses one replica as the idle copy and removes the rest. */
  async scale(name: string, namespace: string, replicas: number): Promise<void> {
    const fn = this.#find(name, namespace);
    const { max } = scaleBounds(fn.deployment);
    if (replicas > max) {
      throw new InvalidArgumentError(
        `cannot scale "${name}" to ${replicas}: its maximum is ${max} (label com.openfaas.scale.max)`,
      );
    }
    await this.#locked(fn, () => this.#scaleLocked(fn, replicas));
  }

  /** Deletes a function: SIGTERM, grace period, SIGKILL, then everything it had. */
  async remove(name: string, namespace: string): Promise<void> {
    const fn = this.#find(name, namespace);
    await this.#locked(fn, async () => {
      fn.deleted = true;
      this.#fns.delete(keyOf(name, namespace));
      const grace = graceMs(fn.deployment);
      await Promise.all(fn.replicas.map((r) => this.#destroy(r, grace)));
      fn.replicas = [];
      this.#notify(fn);
    });
    this.#log.info("deleted", { function: name, namespace });
  }

  /**
   * Picks a ready replica for a request, round robin. A function scaled to zero is resumed
   * first; a request waits (up to `timeoutMs`) until a replica is ready.
   */
  async route(
    name: string,
    namespace: string,
    opts: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<Route> {
    const fn = this.#find(name, namespace);
    fn.invocations++;
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      const ready = fn.replicas.filter((r) => r.state === "ready" && r.ip);
      if (ready.length > 0) {
        const r = ready[fn.rr++ % ready.length];
        r.inflight++;
        let released = false;
        return {
          ip: r.ip!,
          port: FUNCTION_PORT,
          timeoutMs: upstreamTimeoutMs(fn.deployment),
          release: () => {
            if (!released) r.inflight--;
            released = true;
          },
        };
      }
      if (fn.deleted) {
        throw new NotFoundError(`function "${name}" not found in namespace "${namespace}"`);
      }
      if (fn.desired === 0) {
        await this.#locked(
          fn,
          () =>
            fn.desired === 0
              ? this.#scaleLocked(fn, 1, { waitForLabels: false })
              : Promise.resolve(),
        );
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0 || opts.signal?.aborted) {
        throw new UnavailableError(
          `function "${name}" has no ready replica (waited ${opts.timeoutMs / 1000}s)`,
        );
      }
      await this.#changed(fn, left, opts.signal);
    }
  }

  /** CNI container IDs of every replica the manager holds (their networking must stay). */
  liveNetworkIds(): Set<string> {
    return new Set([...this.#fns.values()].flatMap((f) => f.replicas.map((r) => r.ref.networkId)));
  }

  /**
   * Every function's replica count and labels, straight from memory (for the metrics and the
   * autoscaler, which read them every second).
   */
  snapshot(): Array<
    { name: string; namespace: string; labels?: Record<string, string>; replicas: number }
  > {
    const out = [];
    for (const f of this.#fns.values()) {
      if (f.deleted) continue;
      out.push({
        name: f.name,
        namespace: f.namespace,
        labels: f.deployment.labels,
        replicas: f.desired,
      });
    }
    return out;
  }

  /**
   * Where `invocationCount` comes from: in `faasd up`, the gateway's metrics (the sum of
   * `gateway_function_invocation_total`); otherwise the requests this manager routed.
   */
  countInvocationsWith(source: (name: string, namespace: string) => number): void {
    this.#invocationCount = source;
  }

  // ---- internals ----

  #find(name: string, namespace: string): Fn {
    const fn = this.#fns.get(keyOf(name, namespace));
    if (!fn || fn.deleted) {
      throw new NotFoundError(`function "${name}" not found in namespace "${namespace}"`);
    }
    return fn;
  }

  #status(fn: Fn): FunctionStatus {
    return toFunctionStatus(fn.deployment, {
      createdAt: fn.createdAt,
      replicas: fn.desired,
      availableReplicas: fn.replicas.filter((r) => r.state === "ready").length,
      invocationCount: this.#invocationCount?.(fn.name, fn.namespace) ?? fn.invocations,
    });
  }

  async #locked<T>(fn: Fn, work: () => Promise<T>): Promise<T> {
    const run = fn.lock.then(work, work);
    fn.lock = run.catch(() => {});
    return await run;
  }

  // The image ensure() would find without pulling, or undefined (also for policy Always).
  async #knownImage(dep: FunctionDeployment, namespace: string) {
    try {
      if (parsePullPolicy(dep.labels?.[PULL_POLICY_LABEL]) === "Always") return undefined;
      return await this.#deps.images.known?.(dep.image, { namespace });
    } catch {
      return undefined; // a bad label or a failed read: #image() says what is wrong
    }
  }

  async #image(
    dep: FunctionDeployment,
    namespace: string,
    known?: Awaited<ReturnType<NonNullable<ImageSource["known"]>>>,
  ) {
    const policy = parsePullPolicy(dep.labels?.[PULL_POLICY_LABEL]);
    let img;
    try {
      img = known ?? await this.#deps.images.ensure(dep.image, { namespace, policy });
    } catch (err) {
      throw new InvalidArgumentError(`cannot use image "${dep.image}": ${(err as Error).message}`, {
        cause: err,
      });
    }
    // ensure() has read the image config already.
    const config = img.runConfig as ImageProcessConfig;
    // A USER given by name (OpenFaaS templates use "app") needs the image's passwd and group.
    return {
      name: img.name,
      chainId: img.chainId,
      config,
      ...await userDatabase(this.#deps.containerd, namespace, img.chainId, config.User ?? ""),
    };
  }

  async #createReplica(
    fn: Fn,
    index: number,
    generation: number,
    dep: FunctionDeployment,
    image: NonNullable<Fn["image"]>,
    opts: { desired?: number } = {},
  ): Promise<Replica> {
    const id = containerId(fn.name, generation, index);
    const ref: ReplicaRef = {
      namespace: fn.namespace,
      id,
      networkId: networkId(fn.namespace, id),
      logFile: logFile(this.#deps.paths.logDir, fn.namespace, fn.name, id),
    };
    ref.netns = this.#deps.network.netnsPath?.(ref.networkId);
    // The pinned netns is created and attached while the container and its task are created.
    const network = ref.netns ? setUpReplicaNetwork(this.#replicaDeps(), ref) : undefined;
    const record = encodeRecord(dep, { generation, createdAt: fn.createdAt, replica: index });
    const spec = buildSpec({
      id,
      namespace: fn.namespace,
      deployment: dep,
      imageConfig: image.config,
      etcPasswd: image.etcPasswd,
      etcGroup: image.etcGroup,
      // Without a pinned netns, runc creates one and CNI wires it before start.
      netnsPath: ref.netns ?? "",
      ...specResources(dep),
      hostsPath: this.#deps.paths.hostsFile,
      resolvPath: this.#deps.paths.resolvFile,
      secretsDir: this.#deps.secrets.dir(fn.namespace),
      annotations: { ...record.annotations, [SHIM_GROUP_ANNOTATION]: `faasd-ts.${fn.namespace}` },
    });
    const mounts = await createReplicaContainer(this.#replicaDeps(), ref, {
      image: image.name,
      parentSnapshot: image.chainId,
      spec,
      labels: {
        ...record.labels,
        [DESIRED_LABEL]: String(opts.desired ?? fn.desired),
        [OWNER_LABEL]: this.#deps.owner,
      },
    }).catch(async (err) => {
      if (network) await releaseReplicaNetwork(this.#replicaDeps(), ref, network);
      throw err;
    });
    const replica: Replica = {
      index,
      ref,
      state: "starting",
      inflight: 0,
      restarts: 0,
      startedAt: Date.now(),
    };
    try {
      await this.#startTask(fn, replica, { mounts, network });
    } catch (err) {
      if (network) await releaseReplicaNetwork(this.#replicaDeps(), ref, network);
      await removeReplicaContainer(this.#replicaDeps(), ref).catch(() => {});
      throw err;
    }
    return replica;
  }

  async #startTask(
    fn: Fn,
    r: Replica,
    opts: { mounts?: Mount[]; network?: PendingNetwork } = {},
  ): Promise<void> {
    r.state = "starting";
    r.startedAt = Date.now();
    const started = await startReplicaTask(this.#replicaDeps(), r.ref, {
      ...opts,
      mounts: opts.mounts ?? r.mounts,
    });
    r.ip = started.ip;
    r.pid = started.pid;
    r.mounts = started.mounts;
    this.#probe(fn, r);
  }

  // Marks the replica ready once it accepts connections; a replica that never does is
  // restarted like a crashed one.
  #probe(fn: Fn, r: Replica): void {
    const path = fn.deployment.labels?.["com.openfaas.ready.http.path"];
    waitReady({ ip: r.ip!, port: FUNCTION_PORT, httpPath: path }, {
      timeoutMs: this.#deps.readyTimeoutMs ?? 60_000,
      signal: this.#stop.signal,
    }).then(() => {
      if (r.state !== "starting") return;
      r.state = "ready";
      this.#notify(fn);
    }, (err) => {
      if (r.state !== "starting" || this.#stop.signal.aborted) return;
      this.#log.warn("replica not ready", { replica: r.ref.id, err: String(err) });
      this.#crashed(fn, r);
    });
  }

  async #whenReady(fn: Fn, r: Replica): Promise<void> {
    const deadline = Date.now() + (this.#deps.readyTimeoutMs ?? 60_000) + 1000;
    while (r.state !== "ready") {
      if (r.state === "crashed" || r.state === "stopping") {
        throw new FailedPreconditionError(`replica "${r.ref.id}" exited before it was ready`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new FailedPreconditionError(`replica "${r.ref.id}" was not ready in time`);
      }
      await this.#changed(fn, left);
    }
  }

  // With waitForLabels false (scale from zero on a request), the desired count is written to
  // containerd after the request has its replica.
  async #scaleLocked(fn: Fn, n: number, opts = { waitForLabels: true }): Promise<void> {
    fn.desired = n;
    if (n === 0) {
      await this.#idle(fn);
    } else {
      const live = () => fn.replicas.filter((r) => r.state !== "stopping");
      for (const r of live().filter((r) => r.state === "paused")) {
        await this.#freezer.thaw(freezerTarget(r.ref));
        r.state = "ready";
      }
      const used = new Set(fn.replicas.map((r) => r.index));
      const indices: number[] = [];
      for (let i = 0; indices.length < n - live().length; i++) if (!used.has(i)) indices.push(i);
      // The image is looked up only when a replica must be created (not to resume one).
      const image = indices.length > 0
        ? fn.image ?? (fn.image = await this.#image(fn.deployment, fn.namespace))
        : undefined;
      const created = await Promise.all(
        indices.map((i) => this.#createReplica(fn, i, fn.generation, fn.deployment, image!)),
      );
      fn.replicas.push(...created);
      const extra = live().sort((a, b) => b.index - a.index).slice(
        0,
        Math.max(0, live().length - n),
      );
      await this.#retire(fn, extra);
    }
    this.#notify(fn);
    const persisted = this.#persistDesired(fn);
    if (opts.waitForLabels) await persisted;
  }

  // Scale to zero: keep one replica paused (resuming takes milliseconds), remove the others.
  async #idle(fn: Fn): Promise<void> {
    const live = fn.replicas.filter((r) => r.state !== "stopping");
    const keep = live.find((r) => r.state === "paused") ?? live.find((r) => r.state === "ready") ??
      live[0];
    await this.#retire(fn, live.filter((r) => r !== keep));
    if (keep && keep.state !== "paused") {
      if (keep.state === "starting") await this.#whenReady(fn, keep).catch(() => {});
      await drain(keep, 30_000);
      await this.#freezer.freeze(freezerTarget(keep.ref));
      keep.state = "paused";
    }
  }

  async #retire(fn: Fn, replicas: Replica[]): Promise<void> {
    if (replicas.length === 0) return;
    for (const r of replicas) r.state = "stopping";
    fn.replicas = fn.replicas.filter((r) => !replicas.includes(r));
    await Promise.all(replicas.map(async (r) => {
      await drain(r, 30_000);
      await this.#destroy(r, graceMs(fn.deployment));
    }));
  }

  async #destroy(r: Replica, graceMs: number): Promise<void> {
    r.state = "stopping";
    clearTimeout(r.restartTimer);
    try {
      await stopReplicaTask(this.#replicaDeps(), r.ref, graceMs);
      await removeReplicaContainer(this.#replicaDeps(), r.ref);
    } catch (err) {
      this.#log.error("cannot remove replica", { replica: r.ref.id, err });
    }
  }

  async #persistDesired(fn: Fn): Promise<void> {
    await Promise.all(
      fn.replicas.map((r) =>
        this.#deps.containerd.containers.setLabels(fn.namespace, r.ref.id, {
          [DESIRED_LABEL]: String(fn.desired),
        }).catch(() => {})
      ),
    );
  }

  #crashed(fn: Fn, r: Replica): void {
    if (r.state === "stopping" || fn.deleted) return;
    r.state = "crashed";
    this.#notify(fn);
    // The first restart is immediate; repeated crashes back off 100 ms, 200 ms, … up to 10 s.
    // A replica that ran a minute starts over.
    if (Date.now() - r.startedAt > 60_000) r.restarts = 0;
    const delay = r.restarts === 0 ? 0 : Math.min(10_000, 100 * 2 ** (r.restarts - 1));
    r.restarts++;
    this.#log.warn("replica exited, restarting", { replica: r.ref.id, inMs: delay });
    clearTimeout(r.restartTimer);
    r.restartTimer = setTimeout(() => {
      void this.#locked(fn, async () => {
        if (r.state !== "crashed" || fn.deleted || !fn.replicas.includes(r)) return;
        try {
          // Same netns and IP: no CNI DEL and ADD for a restart.
          await stopReplicaTask(this.#replicaDeps(), r.ref, 0, { keepNetwork: true });
          await this.#startTask(fn, r);
          if (fn.desired === 0) await this.#idle(fn);
        } catch (err) {
          this.#log.error("restart failed", { replica: r.ref.id, err });
          this.#crashed(fn, r);
        }
      });
    }, delay);
  }

  #followEvents(): Promise<void> {
    return followTaskExits({ events: this.#deps.containerd.events, log: this.#log }, {
      signal: this.#stop.signal,
      onExit: (e) => this.#onExit(e),
      onReconnect: () => this.#resync(),
    });
  }

  #onExit(e: ContainerdEvent): void {
    const id = String(e.payload.container_id ?? "");
    for (const fn of this.#fns.values()) {
      if (fn.namespace !== e.namespace) continue;
      const r = fn.replicas.find((x) => x.ref.id === id);
      // Only the main process counts, and only the task we started.
      if (!r || e.payload.id !== id || (r.pid && Number(e.payload.pid) !== r.pid)) continue;
      if (r.state === "starting" || r.state === "ready" || r.state === "paused") {
        this.#crashed(fn, r);
      }
    }
  }

  // After the event stream broke (containerd restarted), check every replica's task. A replica
  // that cannot be checked yet is checked again a second later, up to a minute.
  async #resync(attempt = 0): Promise<void> {
    let unsure = false;
    for (const fn of this.#fns.values()) {
      for (const r of fn.replicas) {
        if (r.state === "stopping" || r.state === "crashed") continue;
        let task;
        try {
          // With a deadline: a containerd still starting may hold a call a long time.
          task = await this.#deps.containerd.tasks.get(fn.namespace, r.ref.id, {
            timeoutMs: 5000,
          });
        } catch (err) {
          // Right after a restart containerd may still be reconnecting to the shim ("ttrpc:
          // closed"): only a task that is really gone counts as a crash.
          if (!(err instanceof NotFoundError)) {
            this.#log.warn("cannot check a replica after reconnecting", {
              replica: r.ref.id,
              err: String(err),
            });
            unsure = true;
            continue;
          }
        }
        if (!task || task.status === "STOPPED" || task.pid !== r.pid) this.#crashed(fn, r);
      }
    }
    const stop = this.#stop.signal;
    if (unsure && attempt < 60 && !stop.aborted) {
      await new Promise<void>((res) => {
        const t = setTimeout(res, 1000);
        stop.addEventListener("abort", () => {
          clearTimeout(t);
          res();
        }, { once: true });
      });
      if (!stop.aborted) await this.#resync(attempt + 1);
    }
  }

  // Rebuilds the table from containerd after the appliance starts: the newest generation of
  // each function wins (older ones are leftovers of an interrupted update), running tasks are
  // kept, everything else is restarted.
  async #adopt(): Promise<void> {
    const found = await discoverFunctions(
      {
        namespaces: this.#deps.containerd.namespaces,
        containers: this.#deps.containerd.containers,
        log: this.#log,
      },
      { desiredLabel: DESIRED_LABEL, owner: this.#deps.owner },
    );
    for (const f of found) {
      const fn = newFn(f.deployment, f.namespace, {
        generation: f.generation,
        createdAt: f.createdAt,
        desired: f.desired,
      });
      this.#fns.set(keyOf(fn.name, f.namespace), fn);
      for (const stale of f.stale) {
        void this.#destroy(this.#replicaOf(fn, stale.id, stale.replica), 0);
      }
      for (const x of f.current) {
        const r = this.#replicaOf(fn, x.id, x.replica);
        fn.replicas.push(r);
        await this.#adoptReplica(fn, r);
      }
      this.#log.info("adopted", {
        function: fn.name,
        namespace: f.namespace,
        replicas: fn.replicas.length,
      });
    }
  }

  #replicaOf(fn: Fn, id: string, index: number): Replica {
    return {
      index,
      ref: {
        namespace: fn.namespace,
        id,
        networkId: networkId(fn.namespace, id),
        logFile: logFile(this.#deps.paths.logDir, fn.namespace, fn.name, id),
      },
      state: "starting",
      inflight: 0,
      restarts: 0,
      startedAt: Date.now(),
    };
  }

  async #adoptReplica(fn: Fn, r: Replica): Promise<void> {
    // The spec says whether the replica has a pinned netns (replicas of older versions do not).
    const container = await this.#deps.containerd.containers.get(fn.namespace, r.ref.id).catch(
      () => undefined,
    );
    r.ref.netns = container ? specNetnsPath(container.spec) : undefined;
    const task = await this.#deps.containerd.tasks.get(fn.namespace, r.ref.id).catch(() =>
      undefined
    );
    const ip = await this.#deps.network.cachedIp(r.ref.networkId);
    if (task && ip && (task.status === "RUNNING" || task.status === "PAUSED")) {
      r.ip = ip;
      r.pid = task.pid;
      if (await this.#adoptFrozen(r, task.status === "PAUSED")) {
        r.state = "paused";
      } else {
        this.#probe(fn, r);
      }
      return;
    }
    try {
      await stopReplicaTask(this.#replicaDeps(), r.ref, 0);
      await this.#startTask(fn, r);
    } catch (err) {
      this.#log.error("cannot restart adopted replica", { replica: r.ref.id, err });
      this.#crashed(fn, r);
    }
  }

  // Whether an adopted replica is idle: frozen through its cgroup, or paused through containerd
  // by an older version (then resumed and frozen the current way, so a thaw is one write).
  async #adoptFrozen(r: Replica, pausedByContainerd: boolean): Promise<boolean> {
    const target = freezerTarget(r.ref);
    try {
      if (!pausedByContainerd) return (await this.#freezer.frozen(target)) === true;
      await this.#deps.containerd.tasks.resume(r.ref.namespace, r.ref.id);
      await this.#freezer.freeze(target);
      return true;
    } catch (err) {
      this.#log.warn("cannot tell whether an adopted replica is idle", {
        replica: r.ref.id,
        err: String(err),
      });
      await this.#freezer.thaw(target).catch(() => {});
      return false;
    }
  }

  #notify(fn: Fn): void {
    for (const w of fn.waiters) w();
    fn.waiters.clear();
  }

  #changed(fn: Fn, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        fn.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      fn.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  #replicaDeps(): ReplicaDeps {
    const c = this.#deps.containerd;
    return {
      containers: c.containers,
      snapshots: c.snapshots,
      tasks: c.tasks,
      network: this.#deps.network,
      freezer: this.#freezer,
      runtime: this.#deps.runtime,
      log: this.#log,
    };
  }
}

function newFn(
  deployment: FunctionDeployment,
  namespace: string,
  meta: { generation: number; createdAt: Date; desired: number },
): Fn {
  return {
    name: deployment.service,
    namespace,
    deployment,
    ...meta,
    replicas: [],
    rr: 0,
    invocations: 0,
    lock: Promise.resolve(),
    waiters: new Set(),
    deleted: false,
  };
}

function keyOf(name: string, namespace: string): string {
  return `${namespace}/${name}`;
}

async function drain(r: Replica, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (r.inflight > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
}
