/**
 * What "the faasd program" is on this host, and how install puts it at /usr/local/bin/faasd:
 * a `deno compile` binary is copied; the armhf Node.js bundle and its launcher are copied to
 * /usr/local/lib/faasd with a link to the launcher; a source checkout gets a small sh launcher
 * that runs its main.ts with its Deno (development hosts; the checkout must stay where it is).
 */

import { lstat, mkdir, readFile, readlink, realpath, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError } from "../errors.ts";
import { type Change, writeIfChanged } from "./files.ts";
import { HOST_PATHS, type HostLayout } from "./paths.ts";

/** The program to install. */
export type Program =
  | { kind: "binary"; path: string }
  | { kind: "node"; bundle: string; launcher: string }
  | { kind: "source"; deno: string; main: string };

/** Facts about the running process, gathered by the CLI. */
export interface Runtime {
  /** Deno.build.standalone under Deno; undefined under Node.js. */
  denoStandalone?: boolean;
  /** Deno.execPath() or process.execPath. */
  execPath: string;
  /** Deno.mainModule as a path, or process.argv[1] under Node.js. */
  mainPath: string;
}

/**
 * The runtime flags the source launcher passes to Deno: those of deno.json's `faasd` task
 * (a unit test keeps the two equal).
 */
export const SOURCE_DENO_FLAGS: readonly string[] = Object.freeze([
  "--v8-flags=--max-semi-space-size=1,--heap-growing-percent=30",
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-run",
  "--allow-sys",
]);

/** Which kind of program is running, from the runtime facts. */
export function runningProgram(rt: Runtime): Program {
  if (rt.denoStandalone === true) return { kind: "binary", path: rt.execPath };
  if (rt.denoStandalone === undefined) {
    // Under Node.js (armhf): dist/armhf/faasd (the launcher) runs faasd.mjs next to it.
    const dir = rt.mainPath.replace(/\/[^/]*$/, "");
    return { kind: "node", bundle: rt.mainPath, launcher: join(dir, "faasd") };
  }
  return { kind: "source", deno: rt.execPath, main: rt.mainPath };
}

/** Renders the sh launcher installed for a source checkout. */
export function renderSourceLauncher(deno: string, main: string): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  return `#!/bin/sh
# Written by \`faasd install\` run from a source checkout: runs that checkout's main.ts with its
# Deno. Replace it with a release binary by \`faasd upgrade FILE\`.
exec ${q(deno)} run ${SOURCE_DENO_FLAGS.join(" ")} ${q(main)} "$@"
`;
}

/** One file install wrote. */
export interface Written {
  path: string;
  change: Change;
}

/** Puts `program` at the layout's binary path; returns what changed. */
export async function installProgram(layout: HostLayout, program: Program): Promise<Written[]> {
  switch (program.kind) {
    case "source":
      return [await write(layout.binary, renderSourceLauncher(program.deno, program.main))];
    case "binary": {
      if (await sameFile(program.path, layout.binary)) {
        return [{ path: layout.binary, change: "unchanged" }];
      }
      await removeIfLink(layout.binary);
      return [await write(layout.binary, await readProgram(program.path, "faasd binary"))];
    }
    case "node": {
      const bundle = await readProgram(program.bundle, "armhf bundle");
      const launcher = await readProgram(program.launcher, "armhf launcher");
      const written = [
        await write(join(layout.libDir, "faasd.mjs"), bundle, 0o644),
        await write(join(layout.libDir, "faasd"), launcher),
      ];
      written.push({ path: layout.binary, change: await link(layout.binary) });
      return written;
    }
  }
}

async function write(path: string, content: string | Uint8Array, mode = 0o755): Promise<Written> {
  return { path, change: await writeIfChanged(path, content, mode) };
}

async function readProgram(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new InvalidArgumentError(`Cannot read the ${what} "${path}": ${(err as Error).message}`, {
      cause: err,
    });
  }
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    return await realpath(a) === await realpath(b);
  } catch {
    return false;
  }
}

async function removeIfLink(path: string): Promise<void> {
  const info = await lstat(path).catch(() => undefined);
  if (info?.isSymbolicLink()) await rm(path);
}

// The link is absolute as the host sees it, so it also resolves inside a staged root once
// that root becomes `/`; the launcher finds faasd.mjs through `readlink -f`.
async function link(path: string): Promise<Change> {
  const target = join(HOST_PATHS.libDir, "faasd");
  const current = await readlink(path).catch(() => undefined);
  if (current === target) return "unchanged";
  const existed = await lstat(path).then(() => true, () => false);
  await rm(path, { force: true });
  await mkdir(join(path, ".."), { recursive: true });
  await symlink(target, path);
  return existed ? "updated" : "created";
}
