/**
 * Executes a conflist the way CNI SPEC 1.0 §3 asks a runtime to: ADD in order with `prevResult`
 * chaining, DEL in reverse with the cached ADD result, CHECK in order, and loopback as its own
 * single-plugin attachment for `lo`.
 */

import { access, constants } from "node:fs/promises";
import { join } from "node:path";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errors.ts";
import type { Logger } from "../log.ts";
import {
  type CacheEntry,
  type CniResult,
  listCache,
  readCache,
  removeCache,
  validateContainerId,
  writeCache,
} from "./cache.ts";
import { CNI_VERSION, type Conflist, type PluginConf } from "./conflist.ts";
import { CniError, fromCniFailure, parseCniError } from "./errors.ts";
import type { Exec } from "./exec.ts";
import {
  type Attachment,
  attachmentOf,
  type CniCommand,
  pluginEnv,
  pluginStdin,
} from "./protocol.ts";

/** Where Debian's containernetworking-plugins live, then the upstream default. */
export const DEFAULT_PLUGIN_DIRS: readonly string[] = Object.freeze([
  "/usr/lib/cni",
  "/opt/cni/bin",
]);

/** The PATH plugins run with; bridge and firewall exec `iptables` from it. */
export const DEFAULT_PLUGIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Dependencies and settings of {@link Cni}. */
export interface CniOptions {
  conflist: Conflist;
  /** Directories searched for plugin binaries, in order; also the plugins' CNI_PATH. */
  pluginDirs?: readonly string[];
  /** Where ADD results are cached (`<cacheDir>/<containerId>.json`). */
  cacheDir: string;
  exec: Exec;
  log: Logger;
  /** The replica's interface name; defaults to `eth0`. */
  ifName?: string;
  /**
   * Whether ADD also runs the loopback plugin (default true). Off for network namespaces runc
   * creates: runc brings `lo` up itself, and each plugin run is a process start.
   */
  loopback?: boolean;
  /** PATH for the plugins; defaults to {@link DEFAULT_PLUGIN_PATH}. */
  path?: string;
  /** Kill a plugin that runs longer than this; defaults to 60 s. */
  timeoutMs?: number;
  /**
   * Run ADD's plugins through `nice` with this niceness (the path of `nice` and the value), so
   * that they take the CPU the OCI runtime leaves while it creates the task they run beside.
   */
  addNice?: { nice: string; niceness: number };
}

/** Per-call options of {@link Cni.add}. */
export interface AddOptions {
  /** Runtime values (e.g. `portMappings`); each plugin gets those its `capabilities` declare. */
  runtimeConfig?: Record<string, unknown>;
  signal?: AbortSignal;
}

const LOOPBACK: Conflist = Object.freeze({
  cniVersion: CNI_VERSION,
  name: "lo",
  plugins: [{ type: "loopback" }],
}) as Conflist;

/** Attaches replicas to the network described by a conflist, and detaches them. */
export class Cni {
  readonly conflist: Conflist;
  readonly #dirs: readonly string[];
  readonly #cacheDir: string;
  readonly #exec: Exec;
  readonly #log: Logger;
  readonly #ifName: string;
  readonly #loopback: boolean;
  readonly #path: string;
  readonly #timeoutMs: number;
  readonly #addNice?: { nice: string; niceness: number };

  constructor(opts: CniOptions) {
    this.conflist = opts.conflist;
    this.#dirs = opts.pluginDirs ?? DEFAULT_PLUGIN_DIRS;
    this.#cacheDir = opts.cacheDir;
    this.#exec = opts.exec;
    this.#log = opts.log.child({ component: "cni" });
    this.#ifName = opts.ifName ?? "eth0";
    this.#loopback = opts.loopback ?? true;
    this.#path = opts.path ?? DEFAULT_PLUGIN_PATH;
    this.#timeoutMs = opts.timeoutMs ?? 60_000;
    this.#addNice = opts.addNice;
  }

  /**
   * Sets up `lo` and the network's interface in `netnsPath` and caches the result. An attachment
   * already cached for `containerId` is deleted first, because host-local would hand the same ID
   * a second address. A failed ADD is rolled back with DEL so no lease or rule is left behind.
   */
  async add(containerId: string, netnsPath: string, opts: AddOptions = {}): Promise<Attachment> {
    validateContainerId(containerId);
    if (netnsPath === "") {
      throw new InvalidArgumentError(`Cannot attach "${containerId}" to CNI: empty netns path`);
    }
    const stale = await readCache(this.#cacheDir, containerId);
    if (stale) {
      this.#log.warn("replacing a cached CNI attachment", { containerId, netns: stale.netns });
      await this.del(containerId, stale.netns, { signal: opts.signal });
    }
    if (this.#loopback) {
      const loEnv = { containerId, netns: netnsPath, ifName: "lo", signal: opts.signal };
      await this.#invoke(
        "ADD",
        LOOPBACK.plugins[0],
        loEnv,
        pluginStdin(LOOPBACK, LOOPBACK.plugins[0]),
      );
    }

    const conflist = this.conflist;
    const env = { containerId, netns: netnsPath, ifName: this.#ifName, signal: opts.signal };
    let prevResult: CniResult | undefined;
    try {
      for (const plugin of conflist.plugins) {
        const stdin = pluginStdin(conflist, plugin, {
          prevResult,
          runtimeConfig: opts.runtimeConfig,
        });
        prevResult = await this.#invoke("ADD", plugin, env, stdin);
      }
      if (!prevResult) throw new CniError(`CNI network "${conflist.name}" has no plugins`);
      const attachment = { ...attachmentOf(prevResult, this.#ifName), raw: prevResult };
      await writeCache(this.#cacheDir, {
        containerId,
        netns: netnsPath,
        ifName: this.#ifName,
        config: conflist,
        result: prevResult,
      });
      this.#log.debug("attached", { containerId, ip: attachment.ip });
      return attachment;
    } catch (err) {
      // SPEC §3: a runtime that gets an ADD error should DEL before giving up, so nothing leaks.
      // The rollback ignores the caller's signal: a cancelled ADD must still be undone.
      const failures = await this.#delAll(conflist, prevResult, { ...env, signal: undefined });
      for (const f of failures) {
        this.#log.warn("rollback of a failed CNI ADD failed", { containerId, err: f });
      }
      await removeCache(this.#cacheDir, containerId);
      throw err;
    }
  }

  /**
   * Detaches `containerId`: runs the plugins in reverse with the cached ADD result (and the cached
   * conflist), then drops the cache entry. Without an entry the plugins still run, with no
   * `prevResult`; they accept repeated DELs and a netns that is already gone.
   */
  async del(
    containerId: string,
    netnsPath?: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<void> {
    validateContainerId(containerId);
    const cached = await readCache(this.#cacheDir, containerId);
    const conflist = cached?.config ?? this.conflist;
    const env = {
      containerId,
      netns: netnsPath ?? cached?.netns ?? "",
      ifName: cached?.ifName ?? this.#ifName,
      signal: opts.signal,
    };
    // loopback has no DEL work outside the netns, which goes away with the replica.
    const failures = await this.#delAll(conflist, cached?.result, env);
    for (const f of failures.slice(1)) this.#log.warn("CNI DEL failed", { containerId, err: f });
    if (failures.length > 0) throw failures[0];
    await removeCache(this.#cacheDir, containerId);
    this.#log.debug("detached", { containerId });
  }

  /** Asks each plugin to verify the cached attachment (SPEC §3 CHECK); skipped when `disableCheck` is set. */
  async check(
    containerId: string,
    netnsPath?: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<void> {
    validateContainerId(containerId);
    const cached = await readCache(this.#cacheDir, containerId);
    if (!cached) {
      throw new NotFoundError(`Cannot check the CNI attachment of "${containerId}": not attached`);
    }
    const conflist = cached.config;
    if (conflist.disableCheck) return;
    if (conflist.cniVersion.startsWith("0.") && conflist.cniVersion < "0.4.0") {
      throw new FailedPreconditionError(
        `Cannot check the CNI attachment of "${containerId}": CHECK needs cniVersion 0.4.0 or later`,
      );
    }
    const env = {
      containerId,
      netns: netnsPath ?? cached.netns,
      ifName: cached.ifName,
      signal: opts.signal,
    };
    for (const plugin of conflist.plugins) {
      await this.#invoke(
        "CHECK",
        plugin,
        env,
        pluginStdin(conflist, plugin, { prevResult: cached.result }),
      );
    }
  }

  /** The cached attachment of `containerId`, or undefined. */
  cached(containerId: string): Promise<CacheEntry | undefined> {
    return readCache(this.#cacheDir, containerId);
  }

  /** The container IDs with a cached attachment. */
  cachedIds(): Promise<string[]> {
    return listCache(this.#cacheDir);
  }

  // Runs DEL for every plugin in reverse, continuing past failures so one broken plugin does not
  // keep the others' state alive; returns the failures.
  async #delAll(
    conflist: Conflist,
    prevResult: CniResult | undefined,
    env: InvokeEnv,
  ): Promise<Error[]> {
    const failures: Error[] = [];
    for (const plugin of [...conflist.plugins].reverse()) {
      try {
        await this.#invoke("DEL", plugin, env, pluginStdin(conflist, plugin, { prevResult }));
      } catch (err) {
        failures.push(err as Error);
      }
    }
    return failures;
  }

  async #invoke(
    command: CniCommand,
    plugin: PluginConf,
    env: InvokeEnv,
    stdin: Record<string, unknown>,
  ): Promise<CniResult | undefined> {
    const action = `CNI ${plugin.type} ${command} for "${env.containerId}"`;
    const binary = await this.#find(plugin.type, action);
    const nice = command === "ADD" ? this.#addNice : undefined;
    const r = await this.#exec(
      nice?.nice ?? binary,
      nice ? ["-n", String(nice.niceness), binary] : [],
      {
        env: pluginEnv({ command, ...env, pluginDirs: this.#dirs, path: this.#path }),
        stdin: JSON.stringify(stdin),
        timeoutMs: this.#timeoutMs,
        signal: env.signal,
      },
    );
    if (r.code !== 0) throw fromCniFailure(action, parseCniError(r.stdout), r.stdout || r.stderr);
    if (command !== "ADD") return undefined;
    try {
      return JSON.parse(r.stdout) as CniResult;
    } catch (err) {
      throw new CniError(
        `${action}: the plugin printed no JSON result: ${r.stdout.slice(0, 200)}`,
        {
          cause: err,
        },
      );
    }
  }

  async #find(type: string, action: string): Promise<string> {
    if (!/^[a-zA-Z0-9_.-]+$/.test(type) || type === "." || type === "..") {
      throw new InvalidArgumentError(`${action}: invalid plugin type "${type}"`);
    }
    for (const dir of this.#dirs) {
      const path = join(dir, type);
      try {
        await access(path, constants.X_OK);
        return path;
      } catch {
        // Not in this directory; try the next.
      }
    }
    throw new NotFoundError(`${action}: plugin "${type}" not found in ${this.#dirs.join(", ")}`);
  }
}

interface InvokeEnv {
  containerId: string;
  netns: string;
  ifName: string;
  signal?: AbortSignal;
}
