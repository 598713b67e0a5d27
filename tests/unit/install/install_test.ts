import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeExec } from "../cni/fake_exec.ts";
import { FailedPreconditionError, InvalidArgumentError } from "../../../src/errors.ts";
import { install } from "../../../src/install/install.ts";
import { uninstall } from "../../../src/install/uninstall.ts";
import { upgrade } from "../../../src/install/upgrade.ts";
import { fakeSystemd } from "./fake_systemd.ts";

async function withRoot(fn: (root: string) => Promise<void>) {
  const root = await mkdtemp(join(tmpdir(), "faasd-install-unit-"));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const SOURCE = { kind: "source", deno: "/opt/deno", main: "/src/faasd/main.ts" } as const;
const opts = (root: string) => ({
  root,
  dataDir: "/var/lib/faasd",
  program: SOURCE,
  memoryMax: "512M",
  start: true,
});

Deno.test("install() writes, reloads, enables and starts faasd; a second run only checks", () =>
  withRoot(async (root) => {
    const systemd = fakeSystemd();
    const first = await install({ systemd }, opts(root));
    assert.equal(first.service, "started");
    assert.deepEqual(systemd.calls, [
      "daemon-reload",
      "enable faasd.service",
      "start faasd.service",
    ]);
    assert.ok(first.files.every((f) => f.change === "created"), JSON.stringify(first.files));

    systemd.calls.length = 0;
    const second = await install({ systemd }, opts(root));
    assert.equal(second.service, "running");
    assert.ok(second.files.every((f) => f.change === "unchanged"), JSON.stringify(second.files));
    assert.deepEqual(systemd.calls, ["daemon-reload", "enable faasd.service"]);
    assert.equal(second.credentials.password, first.credentials.password);
  }));

Deno.test("install() restarts a running faasd when its unit changed", () =>
  withRoot(async (root) => {
    const systemd = fakeSystemd(new Set(["faasd.service"]));
    await install({ systemd }, opts(root));
    systemd.calls.length = 0;
    const r = await install({ systemd }, { ...opts(root), memoryMax: "1G" });
    assert.equal(r.service, "restarted");
    assert.ok(systemd.calls.includes("restart faasd.service"));
    const unit = await readFile(join(root, "etc/systemd/system/faasd.service"), "utf8");
    assert.match(unit, /^MemoryMax=1G$/m);
  }));

Deno.test("install() with start false enables without starting, and says how to start", () =>
  withRoot(async (root) => {
    const systemd = fakeSystemd();
    const r = await install({ systemd }, { ...opts(root), start: false });
    assert.equal(r.service, "enabled");
    assert.ok(!systemd.calls.some((c) => c.startsWith("start")));
    assert.ok(r.notes.some((n) => n.includes("systemctl start faasd")));
  }));

Deno.test("install() applies ip_forward through its dependency and notes a change", () =>
  withRoot(async (root) => {
    let applied = 0;
    const r = await install({
      applyIpForward: () => Promise.resolve(++applied === 1),
    }, opts(root));
    assert.equal(applied, 1);
    assert.ok(r.notes.includes("net.ipv4.ip_forward was 0; set it to 1"));
    assert.equal(r.service, "skipped");
  }));

Deno.test("uninstall() stops, disables and removes units and program, and keeps data", () =>
  withRoot(async (root) => {
    await install({}, opts(root));
    const systemd = fakeSystemd(new Set(["faasd.service"]));
    const r = await uninstall({ systemd }, { root, dataDir: "/var/lib/faasd", purge: false });
    assert.deepEqual(r.stopped, ["faasd.service"]);
    assert.deepEqual(systemd.calls, [
      "disable --now faasd.service",
      "disable --now faasd-provider.service",
      "daemon-reload",
    ]);
    assert.deepEqual(r.kept, [join(root, "var/lib/faasd")]);
    await stat(join(root, "var/lib/faasd/secrets/basic-auth-password"));
    await assert.rejects(stat(join(root, "usr/local/bin/faasd")), { code: "ENOENT" });
  }));

Deno.test("uninstall() refuses to purge a system directory", () =>
  withRoot(async (root) => {
    for (const dataDir of ["/", "/var/lib", "/etc/"]) {
      await assert.rejects(
        uninstall({}, { root, dataDir, purge: true }),
        (err: Error) =>
          err instanceof FailedPreconditionError && /Refusing to purge/.test(err.message),
      );
    }
  }));

Deno.test("upgrade() refuses a file that is not a faasd and leaves the installed one", () =>
  withRoot(async (root) => {
    await install({}, opts(root));
    const before = await readFile(join(root, "usr/local/bin/faasd"), "utf8");
    const file = join(root, "not-faasd");
    await writeFile(file, "#!/bin/sh\necho hello\n", { mode: 0o755 });
    const { exec } = fakeExec(() => ({ stdout: "hello\n" }));
    await assert.rejects(upgrade({ exec }, { root, file }), (err: Error) => {
      assert.ok(err instanceof InvalidArgumentError);
      assert.match(err.message, /is not a faasd binary: ".*version --json" did not print/);
      return true;
    });
    await writeFile(join(root, "plain"), "x", { mode: 0o644 });
    await assert.rejects(upgrade({ exec }, { root, file: join(root, "plain") }), /not executable/);
    await assert.rejects(
      upgrade({ exec }, { root, file: join(root, "missing") }),
      /ENOENT|no such/,
    );
    assert.equal(await readFile(join(root, "usr/local/bin/faasd"), "utf8"), before);
  }));

Deno.test("upgrade() swaps the program and restarts the running units", () =>
  withRoot(async (root) => {
    await install({}, opts(root));
    const file = join(root, "faasd-new");
    await writeFile(file, "NEW BINARY", { mode: 0o755 });
    const { exec } = fakeExec((c) => ({
      stdout: JSON.stringify({ version: c.file === file ? "0.2.0" : "0.1.0", sha: "abc" }),
    }));
    const systemd = fakeSystemd(new Set(["faasd.service"]));
    const r = await upgrade({ exec, systemd }, { root, file });
    assert.deepEqual(r.from, { version: "0.1.0", sha: "abc" });
    assert.deepEqual(r.to, { version: "0.2.0", sha: "abc" });
    assert.deepEqual(r.restarted, ["faasd.service"]);
    assert.equal(await readFile(join(root, "usr/local/bin/faasd"), "utf8"), "NEW BINARY");
    assert.equal((await stat(join(root, "usr/local/bin/faasd"))).mode & 0o777, 0o755);
  }));

Deno.test("upgrade() says to install first when nothing is installed", () =>
  withRoot(async (root) => {
    const file = join(root, "faasd-new");
    await writeFile(file, "NEW", { mode: 0o755 });
    const { exec } = fakeExec(() => ({ stdout: '{"version":"0.2.0","sha":"abc"}' }));
    await assert.rejects(
      upgrade({ exec }, { root, file }),
      (err: Error) =>
        err instanceof FailedPreconditionError && /faasd is not installed/.test(err.message) &&
        err.message.includes(`"${file} install"`),
    );
  }));

Deno.test("install() carries on with a note when ip_forward cannot be set (read-only /proc/sys)", () =>
  withRoot(async (root) => {
    const r = await install({
      applyIpForward: () => Promise.reject(new Error("EROFS: read-only file system")),
    }, opts(root));
    assert.ok(
      r.notes.some((n) => n.startsWith("could not set net.ipv4.ip_forward now (EROFS")),
      r.notes.join("\n"),
    );
    await stat(join(root, "etc/systemd/system/faasd.service"));
  }));
