/** Unit tests for scripts/build.ts: build info rendering, argument lists, denort detection, launcher. */

import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bundleArgs,
  commitLabel,
  COMPILE_TARGETS,
  compileArgs,
  denortFailureMessage,
  formatSize,
  isDenortDownloadFailure,
  parseBuildInfo,
  permissionFlags,
  renderBuildInfo,
  renderNodeWrapper,
  selectTargets,
  stripAnsi,
  withNodeMain,
} from "../../scripts/build.ts";

const BUILD_INFO_FILE = new URL("../../src/build_info.ts", import.meta.url);

// What `deno compile --target x86_64-unknown-linux-gnu` (Deno 2.9.6) printed on a machine that
// cannot resolve dl.deno.land.
const DENORT_OFFLINE = [
  "\x1b[0m\x1b[32mCheck\x1b[0m main.ts",
  "\x1b[0m\x1b[32mCompile\x1b[0m main.ts to dist/faasd-x86_64",
  "\x1b[0m\x1b[32mDownload\x1b[0m https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
  "\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: Writing deno compile executable to temporary file " +
  "'dist/faasd-x86_64.tmp-c12e23df00a9c31c'",
  "",
  "Caused by:",
  "    0: Setting up base binary.",
  "    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-x86_64-" +
  "unknown-linux-gnu.zip): client error (Connect): dns error: failed to lookup address " +
  "information: Name or service not known",
  "    2: client error (Connect)",
  "    3: dns error",
  "    4: failed to lookup address information: Name or service not known",
  "",
  "Stack backtrace:",
  "   0: <unknown>",
  "",
].join("\n");

// What it printed for a type error.
const TYPE_ERROR = [
  "\x1b[0m\x1b[32mCheck\x1b[0m main.ts",
  "\x1b[0m\x1b[1mTS2322 \x1b[0m[ERROR]: Type 'string' is not assignable to type 'number'.",
  'const x: number = "a";',
  "\x1b[0m\x1b[31m      ^\x1b[0m",
  "    at \x1b[0m\x1b[36mfile:///work/main/main.ts\x1b[0m:\x1b[0m\x1b[33m1\x1b[0m:\x1b[0m\x1b[33m7\x1b[0m",
  "",
  "\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: Type checking failed.",
  "",
].join("\n");

// An error after denort was downloaded: the Download line alone must not count.
const WRITE_ERROR_AFTER_DOWNLOAD = [
  "Compile main.ts to dist/faasd-x86_64",
  "Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
  "error: Writing deno compile executable to temporary file 'dist/faasd-x86_64.tmp-1'",
  "",
  "Caused by:",
  "    0: Permission denied (os error 13)",
  "",
].join("\n");

Deno.test("renderBuildInfo() writes the checked-in file's exact format", async (t) => {
  await t.step('the checked-in file is renderBuildInfo(version, "source")', async () => {
    const text = await readFile(BUILD_INFO_FILE, "utf8");
    const info = parseBuildInfo(text);
    assert.ok(info, "src/build_info.ts no longer parses; keep renderBuildInfo() in step with it");
    assert.equal(info.sha, "source");
    assert.equal(renderBuildInfo(info.version, info.sha), text);
  });

  const cases = [
    { name: "a clean commit", version: "0.1.0", sha: "dd200fdf3fc8" },
    { name: "a dirty tree", version: "1.2.3-rc.1", sha: "dd200fdf3fc8-dirty" },
    { name: "no git", version: "0.1.0", sha: "unknown" },
    { name: "quotes and backslashes", version: 'a"b\\c', sha: "x" },
  ];
  for (const c of cases) {
    await t.step(`round-trips ${c.name}`, () => {
      const text = renderBuildInfo(c.version, c.sha);
      assert.deepEqual(parseBuildInfo(text), { version: c.version, sha: c.sha });
    });
  }

  await t.step("parseBuildInfo() rejects text in another format", () => {
    assert.equal(
      parseBuildInfo('export const BUILD_INFO = { version: "1", sha: "x" };\n'),
      undefined,
    );
    assert.equal(parseBuildInfo(renderBuildInfo("1", "x") + "// extra\n"), undefined);
  });
});

Deno.test("commitLabel() marks dirty trees and missing git", async (t) => {
  const cases = [
    { name: "clean tree", rev: "dd200fdf3fc8\n", porcelain: "", want: "dd200fdf3fc8" },
    {
      name: "modified file",
      rev: "dd200fdf3fc8\n",
      porcelain: " M a.ts\n",
      want: "dd200fdf3fc8-dirty",
    },
    {
      name: "untracked file",
      rev: "dd200fdf3fc8",
      porcelain: "?? b/\n",
      want: "dd200fdf3fc8-dirty",
    },
    { name: "not a git repo", rev: undefined, porcelain: "", want: "unknown" },
    { name: "empty rev-parse", rev: "\n", porcelain: "", want: "unknown" },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.equal(commitLabel(c.rev, c.porcelain), c.want));
  }
});

Deno.test("permissionFlags() takes the faasd task's permissions", async (t) => {
  const cases = [
    {
      name: "the faasd task",
      task: "node_modules/deno/deno run --allow-read --allow-write --allow-net --allow-env " +
        "--allow-run --allow-sys main.ts",
      want: [
        "--allow-read",
        "--allow-write",
        "--allow-net",
        "--allow-env",
        "--allow-run",
        "--allow-sys",
      ],
    },
    {
      name: "scoped and denied permissions",
      task: "deno run --allow-read=proto --deny-net=example.com --quiet main.ts",
      want: ["--allow-read=proto", "--deny-net=example.com"],
    },
    { name: "none", task: "deno run main.ts", want: [] },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(permissionFlags(c.task), c.want));
  }
});

Deno.test("compileArgs() and bundleArgs() build type-checked commands", async (t) => {
  await t.step("compile targets x86_64 and arm64 Linux", () => {
    assert.deepEqual(
      COMPILE_TARGETS.map((c) => [c.target, c.output]),
      [
        ["x86_64-unknown-linux-gnu", "dist/faasd-x86_64"],
        ["aarch64-unknown-linux-gnu", "dist/faasd-arm64"],
      ],
    );
  });
  await t.step("compile passes permissions, target and output, and never --no-check", () => {
    const args = compileArgs(COMPILE_TARGETS[1], ["--allow-net"]);
    assert.deepEqual(args, [
      "compile",
      "--allow-net",
      "--target",
      "aarch64-unknown-linux-gnu",
      "--output",
      "dist/faasd-arm64",
      "main.ts",
    ]);
  });
  await t.step("bundle type-checks, targets platform deno, and bundles npm packages", () => {
    const args = bundleArgs("dist/armhf/faasd.mjs");
    assert.ok(args.includes("--check"));
    assert.ok(!args.some((a) => a.startsWith("--no-check")));
    assert.equal(args[args.indexOf("--platform") + 1], "deno");
    assert.equal(args[args.indexOf("--packages") + 1], "bundle");
    assert.equal(args[args.indexOf("--output") + 1], "dist/armhf/faasd.mjs");
    assert.equal(args.at(-1), "main.ts");
  });
});

Deno.test("selectTargets() picks targets by short or full name", async (t) => {
  const cases = [
    { name: "none means all", args: [], want: ["x86_64", "arm64"] },
    { name: "short name", args: ["arm64"], want: ["arm64"] },
    { name: "full target", args: ["x86_64-unknown-linux-gnu"], want: ["x86_64"] },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(selectTargets(c.args).map((s) => s.name), c.want));
  }
  await t.step("an unknown name is an error naming the known ones", () => {
    assert.throws(() => selectTargets(["riscv"]), /unknown compile target "riscv".*x86_64, arm64/);
  });
});

Deno.test("isDenortDownloadFailure() recognises only a failed denort download", async (t) => {
  const cases = [
    { name: "offline compile (real Deno 2.9.6 stderr)", stderr: DENORT_OFFLINE, want: true },
    { name: "type error", stderr: TYPE_ERROR, want: false },
    { name: "write error after download", stderr: WRITE_ERROR_AFTER_DOWNLOAD, want: false },
    { name: "empty", stderr: "", want: false },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.equal(isDenortDownloadFailure(c.stderr), c.want));
  }
});

Deno.test("denortFailureMessage() is one paragraph that says what to do", () => {
  const msg = denortFailureMessage(COMPILE_TARGETS[0], "2.9.6", DENORT_OFFLINE);
  assert.ok(!msg.includes("\n") && !msg.includes("\x1b"), "one plain paragraph");
  assert.doesNotMatch(msg, /backtrace|<unknown>/);
  for (
    const part of [
      "cannot build dist/faasd-x86_64",
      "denort",
      "https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
      "cannot reach dl.deno.land (failed to lookup address information",
      "internet",
      "DENORT_BIN",
      "deno task compile x86_64",
      "deno task build:armhf",
    ]
  ) {
    assert.ok(msg.includes(part), `missing ${JSON.stringify(part)} in: ${msg}`);
  }
});

Deno.test("stripAnsi() and formatSize() make terminal output quotable", async (t) => {
  await t.step("stripAnsi removes colour codes", () => {
    assert.equal(stripAnsi("\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: x"), "error: x");
  });
  const cases = [
    { bytes: 1019813, want: "996 KiB" },
    { bytes: 512, want: "1 KiB" },
    { bytes: 204874448, want: "195 MiB" },
  ];
  for (const c of cases) {
    await t.step(`formatSize(${c.bytes}) is ${c.want}`, () => {
      assert.equal(formatSize(c.bytes), c.want);
    });
  }
});

Deno.test("withNodeMain() sets import.meta.main before the bundle runs, keeping Node's own", () => {
  const out = withNodeMain("console.log(import.meta.main);\n");
  assert.match(out, /^\/\/ .*\n/);
  assert.match(out, /import\.meta\.main \?\?= /);
  assert.ok(out.endsWith("\nconsole.log(import.meta.main);\n"));
});

Deno.test("renderNodeWrapper() runs faasd.mjs beside it under Node.js 18+", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "faasd-wrapper-"));
  try {
    const real = join(dir, "real");
    await mkdir(real);
    const wrapper = join(real, "faasd");
    await writeFile(wrapper, renderNodeWrapper(18));
    await chmod(wrapper, 0o755);
    const link = join(dir, "faasd-link");
    await symlink(wrapper, link);
    // A fake node: reports $FAKE_VERSION, and otherwise prints its arguments and exits 7.
    const fakeNode = join(dir, "fake-node");
    await writeFile(
      fakeNode,
      '#!/bin/sh\nif [ "$1" = --version ]; then echo "$FAKE_VERSION"; exit 0; fi\n' +
        'printf "%s\\n" "$@"\nexit 7\n',
    );
    await chmod(fakeNode, 0o755);

    const runWrapper = async (path: string, env: Record<string, string>, args: string[]) => {
      const out = await new Deno.Command(path, { args, env, stdout: "piped", stderr: "piped" })
        .output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };

    await t.step("starts with #!/bin/sh and set -eu", () => {
      assert.match(renderNodeWrapper(18), /^#!\/bin\/sh\n(#.*\n)*set -eu\n/);
    });

    const cases = [
      {
        name: "a missing node exits 1 and says to install Node.js 18",
        path: wrapper,
        env: { NODE: join(dir, "no-such-node"), FAKE_VERSION: "" },
        code: 1,
        stderr: /cannot find Node\.js .*install Node\.js 18 or newer, or set NODE/,
      },
      {
        name: "node 16 exits 1 and names the version it found",
        path: wrapper,
        env: { NODE: fakeNode, FAKE_VERSION: "v16.20.2" },
        code: 1,
        stderr: /Node\.js 18 or newer is needed, but ".*fake-node" is v16\.20\.2/,
      },
      {
        name: "a node that prints no version counts as too old",
        path: wrapper,
        env: { NODE: fakeNode, FAKE_VERSION: "" },
        code: 1,
        stderr: /is not a working Node\.js/,
      },
      {
        name: "node 18 gets faasd.mjs and the arguments, and its exit code passes through",
        path: wrapper,
        env: { NODE: fakeNode, FAKE_VERSION: "v18.19.0" },
        code: 7,
        stdout: `${real}/faasd.mjs\nversion\na b\n`,
      },
      {
        name: "through a symlink it still finds faasd.mjs next to the real file",
        path: link,
        env: { NODE: fakeNode, FAKE_VERSION: "v20.20.2" },
        code: 7,
        stdout: `${real}/faasd.mjs\nversion\na b\n`,
      },
    ];
    for (const c of cases) {
      await t.step(c.name, async () => {
        const out = await runWrapper(c.path, c.env, ["version", "a b"]);
        assert.equal(out.code, c.code, out.stderr);
        if (c.stderr) assert.match(out.stderr, c.stderr);
        if (c.stdout) assert.equal(out.stdout, c.stdout);
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
