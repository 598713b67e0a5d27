import assert from "node:assert/strict";
import { commands, runCli } from "../../../src/cli/main.ts";
import { BUILD_INFO } from "../../../src/build_info.ts";

async function cli(args: string[], env: Record<string, string> = {}) {
  let out = "";
  let err = "";
  const code = await runCli(args, env, {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    isTty: false,
  });
  return { code, out, err };
}

Deno.test("faasd --help lists every subcommand and exits 0", async () => {
  const r = await cli(["--help"]);
  assert.equal(r.code, 0);
  for (const name of ["up", "provider", "install", "image", "registry", "service", "version"]) {
    assert.match(r.out, new RegExp(`^  ${name} `, "m"));
  }
});

Deno.test("faasd with no command prints help on stderr and exits 2", async () => {
  const r = await cli([]);
  assert.equal(r.code, 2);
  assert.match(r.err, /Usage: faasd COMMAND/);
});

Deno.test("every subcommand answers --help with its usage and options", async (t) => {
  for (const cmd of commands()) {
    await t.step(cmd.name, async () => {
      const r = await cli([cmd.name, "--help"]);
      assert.equal(r.code, 0, r.err);
      assert.ok(r.out.startsWith(`Usage: faasd ${cmd.name}`), r.out);
      assert.match(r.out, /--help/);
    });
  }
});

Deno.test("faasd version prints the embedded version and commit", async () => {
  const text = await cli(["version"]);
  assert.equal(text.out, `faasd-ts version ${BUILD_INFO.version} (commit ${BUILD_INFO.sha})\n`);
  const json = await cli(["version", "--json"]);
  assert.deepEqual(JSON.parse(json.out), { version: BUILD_INFO.version, sha: BUILD_INFO.sha });
});

Deno.test("bad command lines print a usage line on stderr and exit 2", async (t) => {
  const cases = [
    { name: "unknown command", args: ["frobnicate"], want: /unknown command "frobnicate"/ },
    { name: "unknown flag", args: ["up", "--bogus"], want: /faasd up: unknown option "--bogus"/ },
    { name: "flag without value", args: ["up", "--port"], want: /"--port" needs a value/ },
    { name: "bad port", args: ["up", "--port", "http"], want: /--port must be a port number/ },
    { name: "stray argument", args: ["version", "extra"], want: /unexpected argument "extra"/ },
    { name: "missing subcommand", args: ["containerd"], want: /missing subcommand/ },
    {
      name: "relative data dir from env",
      args: ["provider"],
      env: { FAASD_DATA_DIR: "data" },
      want: /FAASD_DATA_DIR must be an absolute path/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const r = await cli(c.args, c.env);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, c.want);
      assert.match(r.err, /^Usage: faasd/m);
      assert.equal(r.out, "");
    });
  }
});

Deno.test("a command that cannot reach containerd exits 1 and says how to start it", async () => {
  const r = await cli(["containerd", "version", "--containerd-socket", "/nonexistent/c.sock"]);
  assert.equal(r.code, 1);
  assert.match(r.err, /cannot reach containerd at \/nonexistent\/c.sock/);
  assert.match(r.err, /systemctl start containerd/);
});
