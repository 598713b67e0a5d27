// Builds the release artifacts, with the version and git commit embedded in src/build_info.ts for
// the duration of the build (the file is always put back as it was):
//   compile  `deno compile` for x86_64 and arm64 → dist/faasd-x86_64, dist/faasd-arm64
//   armhf    `deno bundle` for Node.js 18+ → dist/armhf/faasd.mjs, and the dist/armhf/faasd launcher
//
// Usage: deno task compile [x86_64|arm64]…   deno task build:armhf

import { fileURLToPath } from "node:url";

/** A `deno compile` target and the file it produces. */
export interface CompileTarget {
  name: string;
  target: string;
  output: string;
}

/** The targets `deno task compile` builds, by short name. */
export const COMPILE_TARGETS: readonly CompileTarget[] = Object.freeze([
  { name: "x86_64", target: "x86_64-unknown-linux-gnu", output: "dist/faasd-x86_64" },
  { name: "arm64", target: "aarch64-unknown-linux-gnu", output: "dist/faasd-arm64" },
]);

/** Where `armhf` writes the bundle and its launcher. */
export const ARMHF_BUNDLE = "dist/armhf/faasd.mjs";
export const ARMHF_WRAPPER = "dist/armhf/faasd";

/** The oldest Node.js major version the armhf bundle runs on. */
export const MIN_NODE_MAJOR = 18;

/** A failure whose message is the whole story: printed without a stack, exit 1. */
export class BuildError extends Error {
  override name = "BuildError";
}

/** What a finished child process printed, and its exit code. */
export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** A `deno` child that failed; its own output is the message, passed through unchanged. */
export class ChildFailedError extends BuildError {
  override name = "ChildFailedError";
  constructor(message: string, readonly output: Output) {
    super(message);
  }
}

/** Renders src/build_info.ts for a version and commit, exactly as the checked-in file reads. */
export function renderBuildInfo(version: string, sha: string): string {
  return `/**
 * Version and git commit of this build. scripts/build.ts rewrites this file while it compiles or
 * bundles and restores it afterwards, so released artifacts carry their real commit.
 */
export const BUILD_INFO: Readonly<{ version: string; sha: string }> = Object.freeze({
  version: ${JSON.stringify(version)},
  sha: ${JSON.stringify(sha)},
});
`;
}

/** Reads version and commit back out of a file renderBuildInfo wrote; undefined for any other text. */
export function parseBuildInfo(text: string): { version: string; sha: string } | undefined {
  const m = text.match(/^ {2}version: ("(?:[^"\\]|\\.)*"),\n {2}sha: ("(?:[^"\\]|\\.)*"),\n/m);
  if (!m) return undefined;
  const info = { version: JSON.parse(m[1]) as string, sha: JSON.parse(m[2]) as string };
  return renderBuildInfo(info.version, info.sha) === text ? info : undefined;
}

/**
 * The commit to embed: `git rev-parse` output plus "-dirty" when `git status --porcelain` lists
 * anything, or "unknown" outside a git work tree (revParse undefined).
 */
export function commitLabel(revParse: string | undefined, porcelain: string): string {
  const sha = revParse?.trim();
  if (!sha) return "unknown";
  return porcelain.trim() ? `${sha}-dirty` : sha;
}

/**
 * The runtime flags of a deno.json task command line that a compiled binary must carry too:
 * `--allow-*` / `--deny-*` and `--v8-flags=…`.
 */
export function permissionFlags(taskCommand: string): string[] {
  return taskCommand.split(/\s+/).filter((arg) =>
    /^--(allow|deny)-[a-z-]+(=\S*)?$/.test(arg) || /^--v8-flags=\S+$/.test(arg)
  );
}

/** Picks compile targets by short name; none means all. */
export function selectTargets(names: string[]): CompileTarget[] {
  if (names.length === 0) return [...COMPILE_TARGETS];
  return names.map((name) => {
    const t = COMPILE_TARGETS.find((c) => c.name === name || c.target === name);
    if (!t) {
      const known = COMPILE_TARGETS.map((c) => c.name).join(", ");
      throw new BuildError(`unknown compile target "${name}" (known: ${known})`);
    }
    return t;
  });
}

/** Arguments to `deno` that compile main.ts for one target, type-checked. */
export function compileArgs(t: CompileTarget, permissions: string[]): string[] {
  return ["compile", ...permissions, "--target", t.target, "--output", t.output, "main.ts"];
}

/**
 * Arguments to `deno` that bundle main.ts for Node.js. Platform "deno" (not "browser") keeps
 * `node:` builtins as imports and turns CommonJS `require("node:…")` in npm packages (the NATS client) into
 * `createRequire` calls, which Node runs; npm packages are bundled in.
 */
export function bundleArgs(output: string): string[] {
  return [
    "bundle",
    "--check",
    "--platform",
    "deno",
    "--format",
    "esm",
    "--packages",
    "bundle",
    "--output",
    output,
    "main.ts",
  ];
}

/** Removes terminal colour codes, so messages can be matched and quoted. */
export function stripAnsi(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/**
 * Whether `deno compile` failed because it could not download denort, the runtime it wraps the
 * program in. The "Download https://dl.deno.land/…" progress line alone does not count: an error
 * after a successful download also prints it.
 */
export function isDenortDownloadFailure(stderr: string): boolean {
  const lines = stripAnsi(stderr).split("\n");
  return lines.some((l) => l.includes("Setting up base binary")) ||
    lines.some((l) => l.includes("dl.deno.land") && !/^\s*Download\s/.test(l));
}

/** The one-paragraph explanation printed instead of Deno's error when denort is unreachable. */
export function denortFailureMessage(
  t: CompileTarget,
  denoVersion: string,
  stderr: string,
): string {
  const plain = stripAnsi(stderr);
  const url = plain.match(/https:\/\/dl\.deno\.land\/\S*denort-[^\s)]*/)?.[0] ??
    `https://dl.deno.land/release/v${denoVersion}/denort-${t.target}.zip`;
  // Deno prints an anyhow chain: "Caused by:", numbered causes, then maybe a stack backtrace.
  const chain = plain.split("Caused by:")[1]?.split("Stack backtrace:")[0] ?? "";
  const causes = [...chain.matchAll(/^\s*\d+: (.+)$/gm)].map((m) => m[1].trim());
  const cause = causes.length ? ` (${causes[causes.length - 1]})` : "";
  return `cannot build ${t.output}: \`deno compile\` must download the Deno runtime (denort) ` +
    `for ${t.target} from ${url}, and this machine cannot reach dl.deno.land${cause}. ` +
    `Build on a machine with internet access, or set DENORT_BIN to a denort ${denoVersion} ` +
    `binary for that target and compile one target at a time (\`deno task compile ${t.name}\`), ` +
    `or run \`deno task build:armhf\` for a Node.js bundle that needs no download.`;
}

/**
 * Prepends what main.ts needs under Node.js before 24.2, which has no `import.meta.main`: without
 * it `if (import.meta.main)` is false and the CLI never runs. The bundle is a single module, so
 * setting the property on its import.meta reaches main.ts's code.
 */
export function withNodeMain(bundle: string): string {
  return `// scripts/build.ts: Node.js before 24.2 has no import.meta.main; main.ts needs it.
import { realpathSync as __faasdRealpath } from "node:fs";
import { pathToFileURL as __faasdFileUrl } from "node:url";
import.meta.main ??= (() => {
  try {
    return __faasdFileUrl(__faasdRealpath(process.argv[1])).href === import.meta.url;
  } catch {
    return false;
  }
})();
${bundle}`;
}

/** Renders the POSIX sh launcher that runs faasd.mjs from its own directory under Node.js. */
export function renderNodeWrapper(minMajor: number = MIN_NODE_MAJOR): string {
  return `#!/bin/sh
# faasd-ts for hosts \`deno compile\` has no runtime for (armhf): runs faasd.mjs, found next to
# this script, under Node.js ${minMajor} or newer (\$NODE, or node on PATH).
set -eu

node=\${NODE:-node}
if ! command -v "\$node" >/dev/null 2>&1; then
  echo "faasd: cannot find Node.js (\\"\$node\\"): install Node.js ${minMajor} or newer, or set NODE to its path" >&2
  exit 1
fi
version=\$("\$node" --version 2>/dev/null || true)
major=\${version#v}
major=\${major%%.*}
case \$major in
  '' | *[!0-9]*) major=0 ;;
esac
if [ "\$major" -lt ${minMajor} ]; then
  echo "faasd: Node.js ${minMajor} or newer is needed, but \\"\$node\\" is \${version:-not a working Node.js}: install a newer Node.js, or set NODE to one" >&2
  exit 1
fi

self=\$0
if resolved=\$(readlink -f -- "\$0" 2>/dev/null) && [ -n "\$resolved" ]; then
  self=\$resolved
fi
dir=\$(dirname -- "\$self")
exec "\$node" "\$dir/faasd.mjs" "\$@"
`;
}

/** "996 KiB" below 10 MiB, "87 MiB" above. */
export function formatSize(bytes: number): string {
  const kib = bytes / 1024;
  return kib < 10 * 1024 ? `${Math.round(kib)} KiB` : `${Math.round(kib / 1024)} MiB`;
}

// ---- effects ----------------------------------------------------------------------------------

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BUILD_INFO_FILE = `${ROOT}src/build_info.ts`;
const log = (line: string) => console.log(line);

async function run(cmd: string, args: string[]): Promise<Output> {
  const out = await new Deno.Command(cmd, { args, cwd: ROOT, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs a deno subcommand with the Deno running this script; ChildFailedError when it fails. */
async function deno(args: string[]): Promise<Output> {
  const out = await run(Deno.execPath(), args);
  if (out.code !== 0) throw new ChildFailedError(`deno ${args[0]} failed`, out);
  return out;
}

async function gitCommit(): Promise<string> {
  try {
    const rev = await run("git", ["rev-parse", "--short=12", "HEAD"]);
    if (rev.code !== 0) return "unknown";
    const status = await run("git", ["status", "--porcelain"]);
    return commitLabel(rev.stdout, status.code === 0 ? status.stdout : "");
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "unknown"; // no git binary
    throw err;
  }
}

/** Embeds the build info for the duration of fn, restoring the file even on failure or Ctrl-C. */
async function withBuildInfo<T>(fn: () => Promise<T>): Promise<T> {
  const original = await Deno.readTextFile(BUILD_INFO_FILE);
  const current = parseBuildInfo(original);
  if (!current) {
    throw new BuildError(`src/build_info.ts no longer has the format renderBuildInfo() writes`);
  }
  if (current.sha !== "source") {
    throw new BuildError(
      `src/build_info.ts carries commit "${current.sha}" — an earlier build was killed before ` +
        `restoring it; run \`git checkout src/build_info.ts\``,
    );
  }
  const { version } = JSON.parse(await Deno.readTextFile(`${ROOT}package.json`));
  const sha = await gitCommit();
  log(`embedding build info ${version} (${sha})`);
  const restore = () => Deno.writeTextFileSync(BUILD_INFO_FILE, original);
  const signals = { SIGINT: 130, SIGTERM: 143 } as const;
  const handlers = Object.entries(signals).map(([sig, code]) => {
    const handler = () => {
      restore();
      Deno.exit(code);
    };
    Deno.addSignalListener(sig as Deno.Signal, handler);
    return [sig as Deno.Signal, handler] as const;
  });
  try {
    await Deno.writeTextFile(BUILD_INFO_FILE, renderBuildInfo(version, sha));
    return await fn();
  } finally {
    restore();
    for (const [sig, handler] of handlers) Deno.removeSignalListener(sig, handler);
  }
}

async function compile(targetNames: string[]): Promise<void> {
  const targets = selectTargets(targetNames);
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const permissions = permissionFlags(config.tasks.faasd);
  await Deno.mkdir(`${ROOT}dist`, { recursive: true });
  await withBuildInfo(async () => {
    for (const t of targets) {
      log(`compiling main.ts for ${t.target} (${permissions.join(" ")})`);
      try {
        await deno(compileArgs(t, permissions));
      } catch (err) {
        if (err instanceof ChildFailedError && isDenortDownloadFailure(err.output.stderr)) {
          throw new BuildError(denortFailureMessage(t, Deno.version.deno, err.output.stderr));
        }
        throw err;
      }
      log(`wrote ${t.output} (${formatSize((await Deno.stat(`${ROOT}${t.output}`)).size)})`);
    }
  });
}

async function armhf(): Promise<void> {
  await Deno.mkdir(`${ROOT}dist/armhf`, { recursive: true });
  await withBuildInfo(async () => {
    log(`bundling main.ts for Node.js ${MIN_NODE_MAJOR}+ (type-checked)`);
    await deno(bundleArgs(ARMHF_BUNDLE));
  });
  const bundle = `${ROOT}${ARMHF_BUNDLE}`;
  await Deno.writeTextFile(bundle, withNodeMain(await Deno.readTextFile(bundle)));
  log(`wrote ${ARMHF_BUNDLE} (${formatSize((await Deno.stat(bundle)).size)})`);
  await Deno.writeTextFile(`${ROOT}${ARMHF_WRAPPER}`, renderNodeWrapper());
  await Deno.chmod(`${ROOT}${ARMHF_WRAPPER}`, 0o755);
  log(`wrote ${ARMHF_WRAPPER} (runs it under $NODE or node)`);
}

if (import.meta.main) {
  const [mode, ...rest] = Deno.args;
  try {
    if (mode === "compile") await compile(rest);
    else if (mode === "armhf" && rest.length === 0) await armhf();
    else {
      console.error("Usage: deno run … scripts/build.ts (compile [x86_64|arm64]… | armhf)");
      Deno.exit(2);
    }
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    if (err instanceof ChildFailedError) {
      await Deno.stdout.write(new TextEncoder().encode(err.output.stdout));
      await Deno.stderr.write(new TextEncoder().encode(err.output.stderr));
    } else {
      console.error(`build: ${err.message}`);
    }
    Deno.exit(1);
  }
}
