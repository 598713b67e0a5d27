import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../../../src/cli/main.ts";

async function cli(args: string[], stdin?: string) {
  let out = "";
  let err = "";
  let stdinRead = false;
  const code = await runCli(args, {}, {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    isTty: false,
    readStdin: stdin === undefined ? undefined : () => {
      stdinRead = true;
      return Promise.resolve(new TextEncoder().encode(stdin));
    },
  });
  return { code, out, err, stdinRead };
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "faasd-registry-cli-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

Deno.test("registry login saves the password from stdin in config.json with mode 0600", async (t) => {
  const cases = [
    {
      name: "one trailing newline is dropped",
      host: "127.0.0.1:5000",
      key: "127.0.0.1:5000",
      stdin: "pa:ss\n",
      password: "pa:ss",
      shown: "127.0.0.1:5000",
    },
    {
      name: "CRLF is dropped too",
      host: "ghcr.io",
      key: "ghcr.io",
      stdin: "tok\r\n",
      password: "tok",
      shown: "ghcr.io",
    },
    {
      name: "only one newline is dropped",
      host: "ghcr.io",
      key: "ghcr.io",
      stdin: "tok\n\n",
      password: "tok\n",
      shown: "ghcr.io",
    },
    {
      name: "Docker Hub is stored under its v1 key",
      host: "https://index.docker.io/v1/",
      key: "https://index.docker.io/v1/",
      stdin: "pw",
      password: "pw",
      shown: "docker.io",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () =>
      withDir(async (dir) => {
        const r = await cli(
          ["registry", "login", c.host, "-u", "alice", "--password-stdin", "--data-dir", dir],
          c.stdin,
        );
        assert.equal(r.code, 0, r.err);
        const path = join(dir, ".docker", "config.json");
        assert.equal(r.out, `Login Succeeded: credentials for ${c.shown} saved in ${path}\n`);
        assert.ok(!r.out.includes(c.password.trim()), "never prints the password");
        assert.equal((await stat(path)).mode & 0o777, 0o600);
        assert.deepEqual(JSON.parse(await readFile(path, "utf8")), {
          auths: { [c.key]: { auth: b64(`alice:${c.password}`) } },
        });
      }));
  }
});

Deno.test("registry logout removes saved credentials and says whether there were any", () =>
  withDir(async (dir) => {
    const login = await cli(
      ["registry", "login", "docker.io", "-u", "bob", "--password-stdin", "--data-dir", dir],
      "pw\n",
    );
    assert.equal(login.code, 0, login.err);
    const path = join(dir, ".docker", "config.json");
    const first = await cli(["registry", "logout", "index.docker.io", "--data-dir", dir]);
    assert.equal(first.code, 0, first.err);
    assert.equal(first.out, `Removed credentials for docker.io from ${path}\n`);
    assert.deepEqual(JSON.parse(await readFile(path, "utf8")), { auths: {} });
    const second = await cli(["registry", "logout", "docker.io", "--data-dir", dir]);
    assert.equal(second.code, 0, second.err);
    assert.equal(second.out, `No credentials for docker.io in ${path}; nothing to remove\n`);
  }));

Deno.test("bad registry command lines exit 2 with a usage line and read no stdin", async (t) => {
  const cases = [
    { name: "no subcommand", args: [], want: /missing subcommand/ },
    { name: "unknown subcommand", args: ["whoami"], want: /unknown registry subcommand "whoami"/ },
    { name: "login without host", args: ["login"], want: /login needs a registry HOST/ },
    { name: "login without user", args: ["login", "ghcr.io", "--password-stdin"], want: /-u USER/ },
    {
      name: "login without --password-stdin",
      args: ["login", "ghcr.io", "-u", "me"],
      want: /add --password-stdin \(passwords are never taken as flags\)/,
    },
    {
      name: "a password flag",
      args: ["login", "ghcr.io", "-u", "me", "-p", "x"],
      want: /unknown option "-p"/,
    },
    {
      name: "bad host",
      args: ["login", "a b", "-u", "me", "--password-stdin"],
      want: /invalid registry host "a b"/,
    },
    {
      name: "extra argument",
      args: ["logout", "ghcr.io", "more"],
      want: /unexpected argument "more"/,
    },
    {
      name: "logout with -u",
      args: ["logout", "ghcr.io", "-u", "me"],
      want: /logout takes neither/,
    },
    {
      name: "relative data dir",
      args: ["logout", "ghcr.io", "--data-dir", "rel"],
      want: /--data-dir must be an absolute path/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () =>
      withDir(async (dir) => {
        const args = ["registry", ...c.args];
        if (!c.args.includes("--data-dir")) args.push("--data-dir", dir);
        const r = await cli(args, "secret\n");
        assert.equal(r.code, 2, r.err);
        assert.match(r.err, c.want);
        assert.match(r.err, /^Usage: faasd registry/m);
        assert.equal(r.out, "");
        assert.equal(r.stdinRead, false);
        await assert.rejects(stat(join(dir, ".docker")), { code: "ENOENT" });
      }));
  }
});

Deno.test("registry login refuses an empty password and writes nothing", async (t) => {
  for (const stdin of ["", "\n"]) {
    await t.step(JSON.stringify(stdin), () =>
      withDir(async (dir) => {
        const r = await cli(
          ["registry", "login", "ghcr.io", "-u", "me", "--password-stdin", "--data-dir", dir],
          stdin,
        );
        assert.equal(r.code, 1);
        assert.equal(
          r.err,
          "faasd registry: cannot log in to ghcr.io: the password read from stdin is empty\n",
        );
        await assert.rejects(stat(join(dir, ".docker")), { code: "ENOENT" });
      }));
  }
});

Deno.test("registry login without a stdin reader fails with exit 1", () =>
  withDir(async (dir) => {
    const r = await cli([
      "registry",
      "login",
      "ghcr.io",
      "-u",
      "me",
      "--password-stdin",
      "--data-dir",
      dir,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /cannot read the password: this process has no stdin/);
  }));

Deno.test("registry --help says credentials are not checked against the registry", async () => {
  const r = await cli(["registry", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.out, /not checked against the registry/);
  assert.match(r.out, /--password-stdin/);
});
