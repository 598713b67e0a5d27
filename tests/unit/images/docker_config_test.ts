import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError } from "../../../src/errors.ts";
import {
  credentialsFor,
  type DockerConfig,
  dockerConfigPath,
  normalizeRegistryHost,
  readDockerConfig,
  removeLogin,
  saveLogin,
} from "../../../src/images/docker_config.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "faasd-dockercfg-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

Deno.test("normalizeRegistryHost() reduces every spelling of a host to host[:port]", async (t) => {
  const cases = [
    { s: "docker.io", want: "docker.io" },
    { s: "index.docker.io", want: "docker.io" },
    { s: "registry-1.docker.io", want: "docker.io" },
    { s: "https://index.docker.io/v1/", want: "docker.io" },
    { s: "GHCR.io", want: "ghcr.io" },
    { s: "https://ghcr.io", want: "ghcr.io" },
    { s: "http://10.0.0.5:5000/", want: "10.0.0.5:5000" },
    { s: "127.0.0.1:5000", want: "127.0.0.1:5000" },
    { s: "[::1]:5000", want: "[::1]:5000" },
    { s: "ghcr.io/owner/app", want: "ghcr.io" },
  ];
  for (const c of cases) {
    await t.step(`"${c.s}" → ${c.want}`, () => assert.equal(normalizeRegistryHost(c.s), c.want));
  }
  for (const s of ["", "https://", "a b", "host:port", "-x.io"]) {
    await t.step(`"${s}" is refused`, () => {
      assert.throws(
        () => normalizeRegistryHost(s),
        (err: unknown) =>
          err instanceof InvalidArgumentError &&
          err.message.startsWith(`invalid registry host "${s}"`),
      );
    });
  }
});

Deno.test("credentialsFor() finds credentials under any key spelling docker uses", async (t) => {
  const config: DockerConfig = {
    auths: {
      "https://index.docker.io/v1/": { auth: b64("hubuser:hub:pass:with:colons") },
      "ghcr.io": { auth: b64("gh:token") },
      "https://quay.io": { username: "q", password: "qp" },
      "http://10.0.0.5:5000/v2/": { auth: b64("local:pw"), identitytoken: "refresh" },
      "registry.example.com": { registrytoken: "bearer" },
      "empty.example.com": {},
    },
    credsStore: "desktop",
  };
  const cases = [
    { host: "docker.io", want: { username: "hubuser", password: "hub:pass:with:colons" } },
    { host: "index.docker.io", want: { username: "hubuser", password: "hub:pass:with:colons" } },
    {
      host: "registry-1.docker.io",
      want: { username: "hubuser", password: "hub:pass:with:colons" },
    },
    { host: "ghcr.io", want: { username: "gh", password: "token" } },
    { host: "https://ghcr.io/", want: { username: "gh", password: "token" } },
    { host: "quay.io", want: { username: "q", password: "qp" } },
    {
      host: "10.0.0.5:5000",
      want: { username: "local", password: "pw", identityToken: "refresh" },
    },
    { host: "registry.example.com", want: { registryToken: "bearer" } },
    { host: "empty.example.com", want: undefined },
    { host: "10.0.0.5", want: undefined },
    { host: "other.io", want: undefined },
  ];
  for (const c of cases) {
    await t.step(`${c.host}: ${c.want ? "found" : "none"}`, () => {
      assert.deepEqual(credentialsFor(config, c.host), c.want);
    });
  }
  await t.step("the canonical key wins over another spelling", () => {
    const both: DockerConfig = {
      auths: { "https://ghcr.io": { auth: b64("old:1") }, "ghcr.io": { auth: b64("new:2") } },
    };
    assert.deepEqual(credentialsFor(both, "ghcr.io"), { username: "new", password: "2" });
  });
  await t.step("an empty config has no credentials", () => {
    assert.equal(credentialsFor({}, "ghcr.io"), undefined);
  });
  await t.step("an auth that is not base64 of user:password is an error naming the host", () => {
    assert.throws(
      () => credentialsFor({ auths: { "ghcr.io": { auth: b64("nocolon") } } }, "ghcr.io"),
      /invalid credentials for registry "ghcr.io": "auth" is not base64 of "user:password"/,
    );
  });
});

Deno.test("readDockerConfig() reads the file, treats a missing one as empty, and names a broken one", async (t) => {
  await t.step(
    "missing file → empty config",
    () => withDir(async (dir) => assert.deepEqual(await readDockerConfig(dir), {})),
  );
  await t.step("existing file is read as is", () =>
    withDir(async (dir) => {
      await mkdir(join(dir, ".docker"));
      const cfg = { auths: { "ghcr.io": { auth: b64("a:b") } }, credsStore: "x" };
      await writeFile(dockerConfigPath(dir), JSON.stringify(cfg));
      assert.deepEqual(await readDockerConfig(dir), cfg);
    }));
  const bad = [
    { name: "malformed JSON", text: "{ auths: ", why: /not valid JSON/ },
    { name: "not an object", text: "[1]", why: /expected an object with an "auths" object/ },
    { name: "auths not an object", text: '{"auths": 3}', why: /expected an object/ },
  ];
  for (const c of bad) {
    await t.step(`${c.name} → InvalidArgumentError naming the file`, () =>
      withDir(async (dir) => {
        await mkdir(join(dir, ".docker"));
        await writeFile(dockerConfigPath(dir), c.text);
        await assert.rejects(readDockerConfig(dir), (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError);
          assert.ok(
            err.message.startsWith(
              `cannot read registry credentials from "${dockerConfigPath(dir)}": `,
            ),
            err.message,
          );
          assert.match(err.message, c.why);
          return true;
        });
      }));
  }
});

Deno.test("saveLogin() writes base64 user:password with mode 0600 in a 0700 dir", () =>
  withDir(async (dir) => {
    await saveLogin(dir, "127.0.0.1:5000", "alice", "s3cret:x");
    const path = dockerConfigPath(dir);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, ".docker"))).mode & 0o777, 0o700);
    const cfg = JSON.parse(await readFile(path, "utf8"));
    assert.deepEqual(cfg, { auths: { "127.0.0.1:5000": { auth: b64("alice:s3cret:x") } } });
    assert.deepEqual(credentialsFor(cfg, "127.0.0.1:5000"), {
      username: "alice",
      password: "s3cret:x",
    });
    assert.deepEqual(await readdir(join(dir, ".docker")), ["config.json"], "no temp file left");
  }));

Deno.test("saveLogin() keeps other keys, replaces other spellings, and tightens modes", () =>
  withDir(async (dir) => {
    await mkdir(join(dir, ".docker"), { mode: 0o755 });
    await chmod(join(dir, ".docker"), 0o755);
    const path = dockerConfigPath(dir);
    await writeFile(
      path,
      JSON.stringify({
        auths: {
          "index.docker.io": { auth: b64("old:old") },
          "ghcr.io": { auth: b64("gh:tok") },
        },
        credsStore: "desktop",
        credHelpers: { "gcr.io": "gcloud" },
      }),
      { mode: 0o644 },
    );
    await chmod(path, 0o644);
    await saveLogin(dir, "https://index.docker.io/v1/", "hub", "pw");
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, ".docker"))).mode & 0o777, 0o700);
    assert.deepEqual(JSON.parse(await readFile(path, "utf8")), {
      auths: {
        "ghcr.io": { auth: b64("gh:tok") },
        "https://index.docker.io/v1/": { auth: b64("hub:pw") },
      },
      credsStore: "desktop",
      credHelpers: { "gcr.io": "gcloud" },
    });
  }));

Deno.test("saveLogin() refuses what cannot be stored and leaves a broken file alone", async (t) => {
  const cases = [
    { name: "empty user", user: "", password: "p", why: /user name "" must be non-empty/ },
    { name: "user with a colon", user: "a:b", password: "p", why: /contain no ":"/ },
    { name: "empty password", user: "a", password: "", why: /empty password/ },
  ];
  for (const c of cases) {
    await t.step(c.name, () =>
      withDir(async (dir) => {
        await assert.rejects(saveLogin(dir, "ghcr.io", c.user, c.password), c.why);
        await assert.rejects(stat(dockerConfigPath(dir)), { code: "ENOENT" });
      }));
  }
  await t.step("malformed existing file", () =>
    withDir(async (dir) => {
      await mkdir(join(dir, ".docker"));
      await writeFile(dockerConfigPath(dir), "{oops");
      await assert.rejects(saveLogin(dir, "ghcr.io", "a", "b"), /not valid JSON/);
      assert.equal(await readFile(dockerConfigPath(dir), "utf8"), "{oops");
    }));
});

Deno.test("removeLogin() removes every spelling of the host and says whether it did", () =>
  withDir(async (dir) => {
    assert.equal(await removeLogin(dir, "ghcr.io"), false, "no file");
    await saveLogin(dir, "docker.io", "hub", "pw");
    await saveLogin(dir, "ghcr.io", "gh", "tok");
    const path = dockerConfigPath(dir);
    const cfg = JSON.parse(await readFile(path, "utf8"));
    cfg.auths["https://ghcr.io"] = { auth: b64("old:old") };
    await writeFile(path, JSON.stringify(cfg));
    assert.equal(await removeLogin(dir, "https://ghcr.io/"), true);
    assert.equal(await removeLogin(dir, "ghcr.io"), false, "already gone");
    assert.equal(await removeLogin(dir, "index.docker.io"), true);
    assert.deepEqual(JSON.parse(await readFile(path, "utf8")), { auths: {} });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  }));
