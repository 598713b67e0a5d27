/**
 * Function namespaces: containerd namespaces labelled `openfaas=1` (or `true`), plus
 * `openfaas-fn`, which always exists. Annotations are kept as prefixed labels, since containerd
 * namespaces only have labels.
 */

import type { Images } from "../containerd/images.ts";
import type { Namespaces } from "../containerd/namespaces.ts";
import {
  AlreadyExistsError,
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
} from "../errors.ts";
import { DEFAULT_NAMESPACE } from "./types.ts";

const ANNOTATION = "io.faasd-ts.annotation/";
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A function namespace as the API shows it. */
export interface FunctionNamespace {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** Whether containerd labels mark a namespace as one functions may use. */
export function isFunctionNamespace(name: string, labels: Record<string, string>): boolean {
  return name === DEFAULT_NAMESPACE || labels.openfaas === "1" || labels.openfaas === "true";
}

/** Function namespaces over containerd's namespace service. */
export class FunctionNamespaces {
  constructor(
    private readonly deps: {
      namespaces: Namespaces;
      images: Pick<Images, "list" | "delete">;
      /** Whether any function is deployed in the namespace. */
      hasFunctions: (namespace: string) => boolean;
    },
  ) {}

  /** Names of every function namespace, `openfaas-fn` first. */
  async list(): Promise<string[]> {
    const all = await this.deps.namespaces.list();
    const names = all.filter((n) => isFunctionNamespace(n.name, n.labels)).map((n) => n.name);
    return [DEFAULT_NAMESPACE, ...names.filter((n) => n !== DEFAULT_NAMESPACE)];
  }

  /** One namespace; NotFoundError unless it exists and is labelled for functions. */
  async get(name: string): Promise<FunctionNamespace> {
    // One round trip in the common case; openfaas-fn is created the first time it is needed.
    const ns = await this.deps.namespaces.get(name).catch(async (err) => {
      if (!(err instanceof NotFoundError)) throw err;
      if (name !== DEFAULT_NAMESPACE) throw new NotFoundError(`namespace "${name}" not found`);
      await this.deps.namespaces.ensure(DEFAULT_NAMESPACE, { openfaas: "1" });
      return await this.deps.namespaces.get(name);
    });
    if (!isFunctionNamespace(ns.name, ns.labels)) {
      throw new NotFoundError(`namespace "${name}" not found (it is not labelled openfaas=1)`);
    }
    return split(ns.name, ns.labels);
  }

  /** Throws NotFoundError unless functions may be deployed in `name`. */
  async check(name: string): Promise<void> {
    if (!NAME.test(name)) throw new InvalidArgumentError(`invalid namespace "${name}"`);
    await this.get(name);
  }

  /** Creates a namespace; it must carry the label `openfaas=1`. */
  async create(ns: FunctionNamespace): Promise<void> {
    validate(ns);
    try {
      await this.deps.namespaces.create(ns.name, join(ns));
    } catch (err) {
      if (err instanceof AlreadyExistsError) {
        throw new AlreadyExistsError(`namespace "${ns.name}" already exists`);
      }
      throw err;
    }
  }

  /** Replaces a namespace's labels and annotations. */
  async update(ns: FunctionNamespace): Promise<void> {
    validate(ns);
    const current = await this.get(ns.name);
    const next = join(ns);
    // Clear what is no longer there (an empty value deletes a label), then set the rest.
    const cleared = Object.fromEntries(
      Object.keys(join(current)).filter((k) => !(k in next)).map((k) => [k, ""]),
    );
    await this.deps.namespaces.setLabels(ns.name, { ...cleared, ...next });
  }

  /** Deletes a namespace with no functions, and the images it still holds. */
  async delete(name: string): Promise<void> {
    if (name === DEFAULT_NAMESPACE) {
      throw new InvalidArgumentError(`namespace "${DEFAULT_NAMESPACE}" cannot be deleted`);
    }
    await this.get(name);
    if (this.deps.hasFunctions(name)) {
      throw new ConflictError(`namespace "${name}" still has functions: delete them first`);
    }
    const images = await this.deps.images.list(name);
    for (const [i, image] of images.entries()) {
      await this.deps.images.delete(name, image.name, i === images.length - 1);
    }
    await this.deps.namespaces.delete(name);
  }
}

function validate(ns: FunctionNamespace): void {
  if (!NAME.test(ns.name) || ns.name.length > 63) {
    throw new InvalidArgumentError(
      `invalid namespace name "${ns.name}": use a DNS label (a-z, 0-9, -)`,
    );
  }
  if (!isFunctionNamespace("", ns.labels ?? {})) {
    throw new InvalidArgumentError(`namespace "${ns.name}" needs the label openfaas=1`);
  }
}

function join(ns: FunctionNamespace): Record<string, string> {
  const out: Record<string, string> = { ...ns.labels };
  for (const [k, v] of Object.entries(ns.annotations ?? {})) out[ANNOTATION + k] = v;
  return out;
}

function split(name: string, all: Record<string, string>): FunctionNamespace {
  const labels: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(all)) {
    if (k.startsWith(ANNOTATION)) annotations[k.slice(ANNOTATION.length)] = v;
    else labels[k] = v;
  }
  return { name, labels, annotations };
}
