/**
 * The real provider routes over an in-memory function table, for UI unit tests: deployments are
 * checked by the real `validateDeployment`, so error messages are the API's own.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AlreadyExistsError, NotFoundError } from "../../../src/errors.ts";
import { createLogger } from "../../../src/log.ts";
import type { LogRecord } from "../../../src/provider/logs.ts";
import { createProviderHandler } from "../../../src/provider/routes.ts";
import { SecretStore } from "../../../src/provider/secrets.ts";
import type { FunctionDeployment, FunctionStatus } from "../../../src/provider/types.ts";
import { validateDeployment } from "../../../src/provider/validate.ts";

/** An API over fakes, what it was asked, and a way to remove its temp dir. */
export interface FakeApi extends AsyncDisposable {
  handler: (req: Request) => Promise<Response>;
  functions: Map<string, FunctionStatus>;
  deployed: FunctionDeployment[];
  scaled: Array<{ name: string; namespace: string; replicas: number }>;
  removed: string[];
  /** What `/system/logs` serves for any function. */
  logLines: LogRecord[];
  /** When set, a follow waits after the lines until its request is aborted. */
  followUntilAborted: boolean;
  /** The signals of the log queries made. */
  logSignals: AbortSignal[];
  secrets: SecretStore;
}

/** A function status with defaults. */
export function status(p: Partial<FunctionStatus> & { name: string }): FunctionStatus {
  return {
    image: "registry.local/fn/hello:1",
    namespace: "openfaas-fn",
    invocationCount: 0,
    replicas: 1,
    availableReplicas: 1,
    createdAt: "2026-01-01T00:00:00Z",
    ...p,
  };
}

/** Builds the fake API; `functions` are keyed `name.namespace`. */
export async function fakeApi(functions: FunctionStatus[] = []): Promise<FakeApi> {
  const dir = await mkdtemp(join(tmpdir(), "faasd-ui-"));
  const table = new Map(functions.map((f) => [`${f.name}.${f.namespace}`, f]));
  const find = (name: string, ns: string) => {
    const fn = table.get(`${name}.${ns}`);
    if (!fn) throw new NotFoundError(`function "${name}" not found in namespace "${ns}"`);
    return fn;
  };
  const namespaces = ["openfaas-fn", "team"];
  const secrets = new SecretStore(dir);
  const api: FakeApi = {
    functions: table,
    deployed: [],
    scaled: [],
    removed: [],
    logLines: [],
    followUntilAborted: false,
    logSignals: [],
    secrets,
    handler: createProviderHandler({
      functions: {
        list: (ns) => Promise.resolve([...table.values()].filter((f) => f.namespace === ns)),
        get: (name, ns) => Promise.resolve().then(() => find(name, ns)),
        deploy: (body) =>
          Promise.resolve().then(() => {
            const dep = validateDeployment(body, { defaultNamespace: "openfaas-fn" });
            if (!namespaces.includes(dep.namespace!)) {
              throw new NotFoundError(`namespace "${dep.namespace}" not found`);
            }
            const key = `${dep.service}.${dep.namespace}`;
            if (table.has(key)) throw new AlreadyExistsError(`function "${dep.service}" exists`);
            api.deployed.push(dep);
            table.set(key, status({ ...dep, name: dep.service, availableReplicas: 0 }));
          }),
        update: () => Promise.reject(new NotFoundError("not used")),
        remove: (name, ns) =>
          Promise.resolve().then(() => {
            find(name, ns);
            table.delete(`${name}.${ns}`);
            api.removed.push(`${name}.${ns}`);
          }),
        scale: (name, ns, replicas) =>
          Promise.resolve().then(() => {
            find(name, ns).replicas = replicas;
            api.scaled.push({ name, namespace: ns, replicas });
          }),
        checkNamespace: (ns) =>
          namespaces.includes(ns)
            ? Promise.resolve()
            : Promise.reject(new NotFoundError(`namespace "${ns}" not found`)),
      },
      namespaces: {
        list: () => Promise.resolve(namespaces),
        get: (name) => Promise.resolve({ name, labels: {}, annotations: {} }),
        create: () => Promise.resolve(),
        update: () => Promise.resolve(),
        delete: () => Promise.resolve(),
      },
      secrets,
      logs: {
        query(q) {
          // Resolved at once: a fake has nothing to read before it listens.
          return Promise.resolve((async function* () {
            if (q.signal) api.logSignals.push(q.signal);
            for (const r of api.logLines) yield await Promise.resolve(r);
            if (q.follow && api.followUntilAborted && q.signal && !q.signal.aborted) {
              await new Promise((resolve) => q.signal!.addEventListener("abort", resolve));
            }
          })());
        },
      },
      info: { release: "test", sha: "test", arch: "x86_64" },
      log: createLogger({ write: () => {} }),
    }),
    [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }),
  };
  return api;
}
