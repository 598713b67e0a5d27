import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { hostLayout } from "../../../src/install/paths.ts";
import {
  installProgram,
  renderSourceLauncher,
  runningProgram,
  SOURCE_DENO_FLAGS,
} from "../../../src/install/program.ts";

Deno.test("runningProgram() tells a compiled binary, the Node.js bundle and a checkout apart", async (t) => {
  await t.step("deno compile", () =>
    assert.deepEqual(
      runningProgram({
        denoStandalone: true,
        execPath: "/tmp/faasd-x86_64",
        mainPath: "/x/main.ts",
      }),
      { kind: "binary", path: "/tmp/faasd-x86_64" },
    ));
  await t.step("Node.js bundle", () =>
    assert.deepEqual(
      runningProgram({ execPath: "/usr/bin/node", mainPath: "/opt/armhf/faasd.mjs" }),
      { kind: "node", bundle: "/opt/armhf/faasd.mjs", launcher: "/opt/armhf/faasd" },
    ));
  await t.step("source", () =>
    assert.deepEqual(
      runningProgram({ denoStandalone: false, execPath: "/d/deno", mainPath: "/src/main.ts" }),
      { kind: "source", deno: "/d/deno", main: "/src/main.ts" },
    ));
});

Deno.test("the source launcher passes the same runtime flags as deno.json's faasd task", async () => {
  const config = JSON.parse(
    await readFile(fileURLToPath(new URL("../../../deno.json", import.meta.url)), "utf8"),
  );
  const task: string[] = config.tasks.faasd.split(/\s+/);
  assert.deepEqual(
    [...SOURCE_DENO_FLAGS],
    task.filter((a) => a.startsWith("--allow-") || a.startsWith("--v8-flags")),
  );
  const launcher = renderSourceLauncher("/opt/my deno", "/src/it's/main.ts");
  assert.match(launcher, /^#!\/bin\/sh\n/);
  assert.ok(
    launcher.includes(
      `exec '/opt/my deno' run ${SOURCE_DENO_FLAGS.join(" ")} '/src/it'\\''s/main.ts' "$@"\n`,
    ),
  );
});

Deno.test("installProgram() puts the armhf bundle in /usr/local/lib/faasd behind a link", async () => {
  const root = await mkdtemp(join(tmpdir(), "faasd-program-"));
  try {
    const dist = join(root, "dist");
    await mkdir(dist);
    await writeFile(join(dist, "faasd.mjs"), "console.log(1)");
    await writeFile(join(dist, "faasd"), "#!/bin/sh\n", { mode: 0o755 });
    const layout = hostLayout(root, "/var/lib/faasd");
    const program = {
      kind: "node",
      bundle: join(dist, "faasd.mjs"),
      launcher: join(dist, "faasd"),
    } as const;
    const first = await installProgram(layout, program);
    assert.deepEqual(first.map((w) => w.change), ["created", "created", "created"]);
    assert.equal(await readlink(layout.binary), "/usr/local/lib/faasd/faasd");
    assert.equal((await stat(join(layout.libDir, "faasd"))).mode & 0o777, 0o755);
    assert.equal((await stat(join(layout.libDir, "faasd.mjs"))).mode & 0o777, 0o644);
    const second = await installProgram(layout, program);
    assert.deepEqual(second.map((w) => w.change), ["unchanged", "unchanged", "unchanged"]);
    // A compiled binary installed later replaces the link with the file itself.
    await writeFile(join(dist, "faasd-x86_64"), "ELF", { mode: 0o755 });
    await installProgram(layout, { kind: "binary", path: join(dist, "faasd-x86_64") });
    assert.equal(await readFile(layout.binary, "utf8"), "ELF");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
