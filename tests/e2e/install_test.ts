/**
 * End-to-end: `faasd install`, `uninstall` and `upgrade` run from source (deno run main.ts)
 * against a staging root (`--root`), the rendered units checked by the real systemd-analyze,
 * appliance/install.sh run against a staging root through shellcheck and sh, and the cloud-init
 * user-data checked by the real `cloud-init schema`. Nothing on this host outside the temporary
 * roots is changed (the shared test machine must keep its own /etc and /usr/local).
 */

import assert from "node:assert/strict";
import { chmod, cp, mkdtemp, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { renderSourceLauncher } from "../../src/install/program.ts";
import { bundleArgs, renderNodeWrapper, withNodeMain } from "../../scripts/build.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = join(ROOT, "main.ts");
const INSTALL_SH = join(ROOT, "appliance/install.sh");

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<Output> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env: opts.env,
    clearEnv: opts.clearEnv,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const faasd = (...args: string[]) => run(Deno.execPath(), ["run", "-A", MAIN, ...args]);
const show = (o: Output) => `exit ${o.code}\n--- stdout\n${o.stdout}--- stderr\n${o.stderr}`;
const mode = async (path: string) => (await stat(path)).mode & 0o7777;
const exists = (path: string) => stat(path).then(() => true, () => false);

/** Whether `program` is on PATH; prints why a step is skipped when it is not. */
async function have(program: string, why: string): Promise<boolean> {
  const found = await run("sh", ["-c", `command -v ${program}`]);
  if (found.code !== 0) {
    console.log(
      `SKIPPED: ${program} is not installed, so ${why} is not checked (apt-get install ${program})`,
    );
  }
  return found.code === 0;
}

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "faasd-install-e2e-"));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const FILES = [
  "usr/local/bin/faasd",
  "etc/systemd/system/faasd.service",
  "etc/systemd/system/faasd-provider.service",
  "etc/sysctl.d/90-faasd.conf",
  "var/lib/faasd/secrets/basic-auth-user",
  "var/lib/faasd/secrets/basic-auth-password",
];

Deno.test("faasd install --root renders the host files, idempotently", () =>
  withRoot(async (root) => {
    const first = await faasd("install", "--root", root);
    assert.equal(first.code, 0, show(first));
    for (const f of FILES) assert.ok(await exists(join(root, f)), `${f} missing\n${show(first)}`);

    await (async function contents() {
      const unit = await readFile(join(root, "etc/systemd/system/faasd.service"), "utf8");
      assert.match(unit, /^ExecStart=\/usr\/local\/bin\/faasd up --data-dir \/var\/lib\/faasd$/m);
      assert.match(unit, /^WorkingDirectory=\/var\/lib\/faasd$/m);
      assert.match(unit, /^Requires=containerd\.service$/m);
      assert.match(unit, /^After=.*containerd\.service/m);
      assert.match(unit, /^Restart=on-failure$/m);
      assert.match(unit, /^MemoryMax=512M$/m);
      const provider = await readFile(
        join(root, "etc/systemd/system/faasd-provider.service"),
        "utf8",
      );
      assert.match(provider, /^ExecStart=\/usr\/local\/bin\/faasd provider --data-dir /m);
      assert.equal(
        await readFile(join(root, "etc/sysctl.d/90-faasd.conf"), "utf8"),
        "# Written by `faasd install`: function replicas reach other hosts through this one.\n" +
          "net.ipv4.ip_forward = 1\n",
      );
      // Run from source, the program is a launcher for this checkout with this Deno.
      assert.equal(
        await readFile(join(root, "usr/local/bin/faasd"), "utf8"),
        renderSourceLauncher(Deno.execPath(), MAIN),
      );
      assert.equal(await mode(join(root, "usr/local/bin/faasd")), 0o755);
      assert.equal(await mode(join(root, "etc/systemd/system/faasd.service")), 0o644);
      assert.equal(await mode(join(root, "var/lib/faasd/secrets")), 0o700);
      assert.equal(await mode(join(root, "var/lib/faasd/secrets/basic-auth-password")), 0o600);
    })();

    // The next steps: the login line and the journal.
    assert.match(
      first.stdout,
      /cat \/var\/lib\/faasd\/secrets\/basic-auth-password \| faas-cli login --username admin --password-stdin --gateway http:\/\/127\.0\.0\.1:8080/,
    );
    assert.match(first.stdout, /journalctl -u faasd -f/);
    assert.match(first.stdout, /note: systemctl not run \(staging root\)/);

    // The staged launcher is a working faasd.
    const version = await run(join(root, "usr/local/bin/faasd"), ["version", "--json"]);
    assert.equal(version.code, 0, show(version));
    assert.equal(JSON.parse(version.stdout).sha, "source");

    const password = await readFile(join(root, "var/lib/faasd/secrets/basic-auth-password"));
    const before = await Promise.all(FILES.map((f) => stat(join(root, f))));
    const second = await faasd("install", "--root", root);
    assert.equal(second.code, 0, show(second));
    assert.doesNotMatch(second.stdout, /^ {2}(created|updated) /m, "a second run changes nothing");
    assert.equal(second.stdout.match(/^ {2}unchanged /gm)?.length, 6, show(second));
    assert.deepEqual(
      await readFile(join(root, "var/lib/faasd/secrets/basic-auth-password")),
      password,
    );
    const after = await Promise.all(FILES.map((f) => stat(join(root, f))));
    assert.deepEqual(after.map((s) => s.mtimeMs), before.map((s) => s.mtimeMs));
  }));

Deno.test("the installed units pass systemd-analyze verify", async () => {
  if (!await have("systemd-analyze", "the units' syntax")) return;
  await withRoot(async (root) => {
    const out = await faasd("install", "--root", root, "--data-dir", "/srv/faasd data");
    assert.equal(out.code, 0, show(out));
    // After=/Requires= name containerd.service and the standard targets: stage the
    // distribution's unit files (containerd's among them) in the root, where verify looks.
    await cp("/lib/systemd/system", join(root, "usr/lib/systemd/system"), {
      recursive: true,
      verbatimSymlinks: true,
    });
    assert.ok(await exists(join(root, "usr/lib/systemd/system/containerd.service")));
    const units = ["faasd.service", "faasd-provider.service"];
    const verify = await run("systemd-analyze", ["verify", `--root=${root}`, ...units]);
    // systemd-analyze exits 0 on some errors (an invalid value is "ignored"), so stderr must be
    // empty too.
    assert.equal(verify.code, 0, show(verify));
    assert.equal(verify.stderr, "", show(verify));

    // The check itself catches a broken unit: a bad value, and a program that is not there.
    const path = join(root, "etc/systemd/system/faasd.service");
    const good = await readFile(path, "utf8");
    await writeFile(path, good.replace("MemoryMax=512M", "MemoryMax=lots"));
    const bad = await run("systemd-analyze", ["verify", `--root=${root}`, "faasd.service"]);
    assert.match(bad.stderr, /Invalid memory limit 'lots'/);
    await writeFile(path, good);
    await rm(join(root, "usr/local/bin/faasd"));
    const noBinary = await run("systemd-analyze", ["verify", `--root=${root}`, "faasd.service"]);
    assert.notEqual(noBinary.code, 0);
    assert.match(noBinary.stderr, /\/usr\/local\/bin\/faasd is not executable/);
  });
});

Deno.test("faasd install --binary installs that file, after checking it is a faasd", () =>
  withRoot(async (root) => {
    const artifact = join(root, "faasd-release");
    await writeFile(artifact, renderSourceLauncher(Deno.execPath(), MAIN) + "# release\n", {
      mode: 0o755,
    });
    const out = await faasd("install", "--root", root, "--binary", artifact);
    assert.equal(out.code, 0, show(out));
    assert.match(out.stdout, new RegExp(`^faasd install \\(staging root .*\\): ${artifact}$`, "m"));
    assert.equal(
      await readFile(join(root, "usr/local/bin/faasd"), "utf8"),
      await readFile(artifact, "utf8"),
    );
    const notFaasd = join(root, "not-faasd");
    await writeFile(notFaasd, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const refused = await faasd("install", "--root", root, "--binary", notFaasd);
    assert.equal(refused.code, 1, show(refused));
    assert.match(refused.stderr, /is not a faasd binary/);
  }));

Deno.test("faasd uninstall --root removes the files and keeps data; --purge removes data", () =>
  withRoot(async (root) => {
    assert.equal((await faasd("install", "--root", root)).code, 0);
    const out = await faasd("uninstall", "--root", root);
    assert.equal(out.code, 0, show(out));
    for (const f of FILES.slice(0, 4)) {
      assert.ok(!await exists(join(root, f)), `${f} still there`);
      assert.ok(out.stdout.includes(`removed   ${join(root, f)}`), show(out));
    }
    assert.ok(await exists(join(root, "var/lib/faasd/secrets/basic-auth-password")));
    assert.match(out.stdout, /kept .*var\/lib\/faasd \(delete it with --purge\)/);

    const again = await faasd("uninstall", "--root", root);
    assert.equal(again.code, 0, show(again));
    const purge = await faasd("uninstall", "--root", root, "--purge");
    assert.equal(purge.code, 0, show(purge));
    assert.ok(!await exists(join(root, "var/lib/faasd")));
  }));

Deno.test("faasd upgrade --root swaps in a working faasd and refuses anything else", () =>
  withRoot(async (root) => {
    assert.equal((await faasd("install", "--root", root)).code, 0);
    const bin = join(root, "usr/local/bin/faasd");
    const notFaasd = join(root, "not-faasd");
    await writeFile(notFaasd, "#!/bin/sh\necho hello\n", { mode: 0o755 });
    const refused = await faasd("upgrade", "--root", root, notFaasd);
    assert.equal(refused.code, 1, show(refused));
    assert.match(
      refused.stderr,
      /is not a faasd binary: .*version --json" did not print its version/,
    );
    assert.equal(await readFile(bin, "utf8"), renderSourceLauncher(Deno.execPath(), MAIN));

    const next = join(root, "faasd-next");
    await writeFile(next, renderSourceLauncher(Deno.execPath(), MAIN) + "# next\n");
    await chmod(next, 0o755);
    const ok = await faasd("upgrade", "--root", root, next);
    assert.equal(ok.code, 0, show(ok));
    assert.match(ok.stdout, /0\.1\.0 \(source\) → 0\.1\.0 \(source\)/);
    assert.equal(await readFile(bin, "utf8"), await readFile(next, "utf8"));
    assert.equal(await mode(bin), 0o755);

    const missing = await faasd("upgrade", "--root", root);
    assert.equal(missing.code, 2, show(missing));
    assert.match(missing.stderr, /missing FILE/);
  }));

Deno.test("install refuses bad input with a message saying what to do", async (t) => {
  await t.step("a relative --root is a usage error", async () => {
    const out = await faasd("install", "--root", "staging");
    assert.equal(out.code, 2, show(out));
    assert.match(out.stderr, /--root must be an absolute path, got "staging"/);
  });
  await t.step("a bad --memory-max is a usage error", async () => {
    const out = await faasd("install", "--root", "/nonexistent", "--memory-max", "lots");
    assert.equal(out.code, 2, show(out));
    assert.match(out.stderr, /--memory-max: Invalid memory cap "lots"/);
  });
  await t.step("without containerd on the host it names the apt packages", async () => {
    // As root on the real host: the check runs before anything is written.
    const out = await run(Deno.execPath(), ["run", "-A", MAIN, "install"], {
      clearEnv: true,
      env: { PATH: "/nonexistent", HOME: Deno.env.get("HOME") ?? "/root" },
    });
    assert.equal(out.code, 1, show(out));
    assert.match(out.stderr, /missing: containerd, runc \(searched PATH [^)]*\/nonexistent\)/);
    assert.match(out.stderr, /apt-get install containerd runc containernetworking-plugins/);
  });
  await t.step("without root it says to use sudo", async () => {
    if (!await have("setpriv", "running as another user")) return;
    const denoDir = await mkdtemp(join(tmpdir(), "faasd-nobody-"));
    try {
      await chmod(denoDir, 0o777);
      const out = await run("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "env",
        "HOME=/tmp",
        `DENO_DIR=${denoDir}`,
        Deno.execPath(),
        "run",
        "-A",
        MAIN,
        "install",
      ]);
      assert.equal(out.code, 1, show(out));
      assert.match(out.stderr, /faasd install must run as root: .* run "sudo faasd install"/);
    } finally {
      await rm(denoDir, { recursive: true, force: true });
    }
  });
});

Deno.test("appliance/install.sh is clean under shellcheck", async () => {
  if (!await have("shellcheck", "install.sh's shell")) return;
  const out = await run("shellcheck", ["--shell=sh", INSTALL_SH]);
  assert.equal(out.code, 0, show(out));
});

/** A stand-in faasd that answers `version` and records `install` calls. */
async function fakeFaasd(dir: string, log: string): Promise<string> {
  const path = join(dir, "fake-faasd");
  await writeFile(
    path,
    `#!/bin/sh
case $1 in
  version) echo "faasd-ts version 9.9.9 (commit fake)" ;;
  install) echo "install $*" >> '${log}' ;;
  *) exit 3 ;;
esac
`,
    { mode: 0o755 },
  );
  return path;
}

const installSh = (env: Record<string, string>) =>
  run("sh", [INSTALL_SH], { env: { ...env, FAASD_URL: "http://127.0.0.1:9/unreachable" } });

Deno.test("install.sh with a local artifact installs into a staging root, idempotently", () =>
  withRoot(async (dir) => {
    const root = join(dir, "root");
    const log = join(dir, "calls.log");
    const fake = await fakeFaasd(dir, log);
    const env = { FAASD_ROOT: root, FAASD_BINARY: fake, FAASD_ARCH: "x86_64" };
    const first = await installSh(env);
    assert.equal(first.code, 0, show(first));
    const bin = join(root, "usr/local/bin/faasd");
    assert.equal(await readFile(bin, "utf8"), await readFile(fake, "utf8"));
    assert.equal(await mode(bin), 0o755);
    assert.match(first.stderr, /installed .*usr\/local\/bin\/faasd/);
    assert.equal(await readFile(log, "utf8"), `install install --root ${root}\n`);

    const second = await installSh({ ...env, FAASD_INSTALL_ARGS: "--no-start --data-dir /srv/f" });
    assert.equal(second.code, 0, show(second));
    assert.match(second.stderr, /unchanged .*usr\/local\/bin\/faasd/);
    assert.equal(
      (await readFile(log, "utf8")).split("\n")[1],
      `install install --root ${root} --no-start --data-dir /srv/f`,
    );
  }));

Deno.test("install.sh on armv7l installs the Node.js bundle and its launcher behind a link", () =>
  withRoot(async (dir) => {
    const root = join(dir, "root");
    const log = join(dir, "calls.log");
    const dist = join(dir, "armhf");
    await Deno.mkdir(dist);
    await cp(await fakeFaasd(dir, log), join(dist, "faasd"));
    await writeFile(join(dist, "faasd.mjs"), "// bundle\n");
    const env = { FAASD_ROOT: root, FAASD_BINARY: dist, FAASD_ARCH: "armv7l" };
    for (let i = 0; i < 2; i++) {
      const out = await installSh(env);
      assert.equal(out.code, 0, show(out));
    }
    assert.equal(await readlink(join(root, "usr/local/bin/faasd")), "/usr/local/lib/faasd/faasd");
    assert.equal(
      await readFile(join(root, "usr/local/lib/faasd/faasd.mjs"), "utf8"),
      "// bundle\n",
    );
    assert.equal(await mode(join(root, "usr/local/lib/faasd/faasd")), 0o755);
    assert.equal((await readFile(log, "utf8")).trim().split("\n").length, 2);
  }));

Deno.test("install.sh runs the real faasd install from a local artifact", () =>
  withRoot(async (dir) => {
    const root = join(dir, "root");
    const artifact = join(dir, "faasd");
    await writeFile(artifact, renderSourceLauncher(Deno.execPath(), MAIN), { mode: 0o755 });
    const env = { FAASD_ROOT: root, FAASD_BINARY: artifact, FAASD_ARCH: "aarch64" };
    const first = await installSh(env);
    assert.equal(first.code, 0, show(first));
    for (const f of FILES) assert.ok(await exists(join(root, f)), `${f} missing\n${show(first)}`);
    const second = await installSh(env);
    assert.equal(second.code, 0, show(second));
    assert.doesNotMatch(second.stdout, /^ {2}(created|updated) /m, show(second));
  }));

Deno.test("install.sh on armv7l runs the real Node.js bundle's faasd install", () =>
  withRoot(async (dir) => {
    // What `deno task build:armhf` produces, built into the temporary dir so the checkout's
    // dist/ and src/build_info.ts are left alone.
    const dist = join(dir, "armhf");
    await Deno.mkdir(dist);
    const bundle = join(dist, "faasd.mjs");
    const built = await run(Deno.execPath(), bundleArgs(bundle));
    assert.equal(built.code, 0, show(built));
    await writeFile(bundle, withNodeMain(await readFile(bundle, "utf8")));
    await writeFile(join(dist, "faasd"), renderNodeWrapper(), { mode: 0o755 });

    const root = join(dir, "root");
    const env = { FAASD_ROOT: root, FAASD_BINARY: dist, FAASD_ARCH: "armv7l" };
    const first = await installSh(env);
    assert.equal(first.code, 0, show(first));
    assert.match(first.stdout, /: the Node\.js bundle .*\/usr\/local\/lib\/faasd\/faasd\.mjs$/m);
    for (const f of FILES.slice(1)) assert.ok(await exists(join(root, f)), `${f} missing`);
    assert.equal(await readlink(join(root, "usr/local/bin/faasd")), "/usr/local/lib/faasd/faasd");
    const second = await installSh(env);
    assert.equal(second.code, 0, show(second));
    assert.doesNotMatch(second.stdout, /^ {2}(created|updated) /m, show(second));
    const version = await run(join(root, "usr/local/lib/faasd/faasd"), ["version"]);
    assert.equal(version.code, 0, show(version));
  }));

Deno.test("install.sh refuses an unknown CPU and an artifact that does not run", () =>
  withRoot(async (dir) => {
    const cpu = await installSh({ FAASD_ROOT: dir, FAASD_ARCH: "mips", FAASD_BINARY: "/bin/true" });
    assert.equal(cpu.code, 1, show(cpu));
    assert.match(
      cpu.stderr,
      /unsupported CPU "mips": faasd-ts is built for x86_64, aarch64 and armv7l/,
    );
    const broken = join(dir, "broken");
    await writeFile(broken, "#!/bin/sh\nexit 1\n", { mode: 0o755 });
    const out = await installSh({ FAASD_ROOT: dir, FAASD_ARCH: "x86_64", FAASD_BINARY: broken });
    assert.equal(out.code, 1, show(out));
    assert.match(out.stderr, /does not run here \("faasd version" failed\)/);
    assert.ok(!await exists(join(dir, "usr/local/bin/faasd")));
  }));

Deno.test("cloud-config.yml is valid cloud-init user-data, and the LXD profile carries it", async () => {
  const userData = await readFile(join(ROOT, "cloud-config.yml"), "utf8");
  const profile = parse(await readFile(join(ROOT, "appliance/lxd-profile.yaml"), "utf8"));
  assert.equal(profile.config["security.nesting"], "true");
  assert.equal(profile.config["cloud-init.user-data"], userData);
  const config = parse(userData);
  for (const p of ["containerd", "runc", "containernetworking-plugins"]) {
    assert.ok(config.packages.includes(p), `cloud-config.yml does not install ${p}`);
  }
  assert.match(JSON.stringify(config.runcmd), /install\.sh/);
  if (!await have("cloud-init", "cloud-config.yml's schema")) return;
  const out = await run("cloud-init", ["schema", "--config-file", join(ROOT, "cloud-config.yml")]);
  assert.equal(out.code, 0, show(out));
  assert.match(out.stdout, /Valid cloud-config/);
});

Deno.test("appliance/nftables.conf loads in nft's check mode", async () => {
  if (!await have("nft", "the firewall rules")) return;
  const out = await run("nft", ["-c", "-f", join(ROOT, "appliance/nftables.conf")]);
  assert.equal(out.code, 0, show(out));
});
