/**
 * Function secrets: one file per secret under `<data-dir>/provider/secrets/<namespace>/<name>`
 * (mode 0600, directories 0700), mounted read-only into replicas at
 * `/var/openfaas/secrets/<name>`. Values never leave this module except into those files.
 */

import { randomBytes } from "node:crypto";
import { chmod, mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "../errors.ts";

/** A secret as the API lists it: never its value. */
export interface SecretInfo {
  name: string;
  namespace: string;
}

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Checks a secret name: no `/`, not `.` or `..`, not empty. */
export function validateSecretName(name: unknown): string {
  if (typeof name !== "string" || name === "") {
    throw new InvalidArgumentError("secret name is required");
  }
  if (
    name.includes("/") || name === "." || name === ".." || !NAME.test(name) || name.length > 253
  ) {
    throw new InvalidArgumentError(
      `invalid secret name "${name}": use letters, digits, "-", "_" and "." (no "/")`,
    );
  }
  return name;
}

/** Secret files of every namespace under one directory. */
export class SecretStore {
  constructor(readonly root: string) {}

  /** The directory holding a namespace's secrets (mounted file by file into replicas). */
  dir(namespace: string): string {
    return join(this.root, namespace);
  }

  /** The file of one secret. */
  path(namespace: string, name: string): string {
    return join(this.dir(namespace), validateSecretName(name));
  }

  /** Lists a namespace's secrets, sorted by name. */
  async list(namespace: string): Promise<SecretInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.dir(namespace));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    return names.filter((n) => !n.startsWith(".")).sort().map((name) => ({ name, namespace }));
  }

  /** Whether a secret exists. */
  async has(namespace: string, name: string): Promise<boolean> {
    try {
      await stat(this.path(namespace, name));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  }

  /** Creates a secret; AlreadyExistsError when it exists. */
  async create(namespace: string, name: string, value: Uint8Array): Promise<void> {
    if (await this.has(namespace, name)) {
      throw new AlreadyExistsError(`secret "${name}" already exists in namespace "${namespace}"`);
    }
    await this.#write(namespace, name, value);
  }

  /** Replaces a secret's value; NotFoundError when it does not exist. */
  async update(namespace: string, name: string, value: Uint8Array): Promise<void> {
    if (!(await this.has(namespace, name))) {
      throw new NotFoundError(`secret "${name}" not found in namespace "${namespace}"`);
    }
    await this.#write(namespace, name, value);
  }

  /** Deletes a secret; NotFoundError when it does not exist. */
  async delete(namespace: string, name: string): Promise<void> {
    if (!(await this.has(namespace, name))) {
      throw new NotFoundError(`secret "${name}" not found in namespace "${namespace}"`);
    }
    await rm(this.path(namespace, name));
  }

  /** Throws NotFoundError naming every secret of `names` that does not exist. */
  async requireAll(namespace: string, names: string[]): Promise<void> {
    const missing: string[] = [];
    for (const n of names) if (!(await this.has(namespace, n))) missing.push(n);
    if (missing.length > 0) {
      throw new InvalidArgumentError(
        `unknown secret${missing.length > 1 ? "s" : ""} ${
          missing.map((m) => `"${m}"`).join(", ")
        } in namespace "${namespace}": create ${missing.length > 1 ? "them" : "it"} first`,
      );
    }
  }

  // Written to a temp file and renamed, so a replica never mounts half a value.
  async #write(namespace: string, name: string, value: Uint8Array): Promise<void> {
    const dir = this.dir(namespace);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(this.root, 0o700);
    const tmp = join(dir, `.${name}.${randomBytes(4).toString("hex")}`);
    await writeFile(tmp, value, { mode: 0o600 });
    await rename(tmp, this.path(namespace, name));
  }
}
