import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import {
  execArg,
  renderProviderUnit,
  renderUpUnit,
  validateMemoryMax,
} from "../../../src/install/units.ts";

const OPTS = { binary: "/usr/local/bin/faasd", dataDir: "/var/lib/faasd", memoryMax: "512M" };

/** The `Key=value` lines of one [section]. */
function section(unit: string, name: string): string[] {
  const body = unit.split(`[${name}]\n`)[1]?.split("\n[")[0] ?? "";
  return body.split("\n").filter((l) => l && !l.startsWith("#"));
}

Deno.test("renderUpUnit() runs faasd up after containerd, restarts it, caps its memory", () => {
  const unit = renderUpUnit(OPTS);
  assert.deepEqual(section(unit, "Unit"), [
    "Description=faasd-ts up: the gateway on :8080 and the provider on :8081",
    "After=network-online.target containerd.service",
    "Wants=network-online.target",
    "Requires=containerd.service",
    "Conflicts=faasd-provider.service",
    "StartLimitIntervalSec=0",
  ]);
  const service = section(unit, "Service");
  for (
    const line of [
      "ExecStart=/usr/local/bin/faasd up --data-dir /var/lib/faasd",
      "WorkingDirectory=/var/lib/faasd",
      "EnvironmentFile=-/etc/default/faasd",
      "Restart=on-failure",
      "MemoryMax=512M",
    ]
  ) assert.ok(service.includes(line), `missing ${line} in\n${service.join("\n")}`);
  assert.deepEqual(section(unit, "Install"), ["WantedBy=multi-user.target"]);
});

Deno.test("renderProviderUnit() runs faasd provider and conflicts with faasd.service", () => {
  const unit = renderProviderUnit({ ...OPTS, dataDir: "/srv/faasd", memoryMax: "1G" });
  assert.ok(
    section(unit, "Service").includes(
      "ExecStart=/usr/local/bin/faasd provider --data-dir /srv/faasd",
    ),
  );
  assert.ok(section(unit, "Service").includes("WorkingDirectory=/srv/faasd"));
  assert.ok(section(unit, "Service").includes("MemoryMax=1G"));
  assert.ok(section(unit, "Unit").includes("Conflicts=faasd.service"));
});

Deno.test("renderUpUnit() passes extra arguments quoted for systemd", () => {
  const unit = renderUpUnit({
    ...OPTS,
    dataDir: "/srv/my faasd",
    extraArgs: ["--containerd-socket", "/run/k3s/containerd.sock"],
  });
  assert.ok(unit.includes(
    'ExecStart=/usr/local/bin/faasd up --data-dir "/srv/my faasd" --containerd-socket /run/k3s/containerd.sock\n',
  ));
  assert.ok(unit.includes("WorkingDirectory=/srv/my faasd\n"));
});

Deno.test("execArg() keeps % and $ literal and quotes what systemd would split", async (t) => {
  const cases: [string, string][] = [
    ["/usr/local/bin/faasd", "/usr/local/bin/faasd"],
    ["100%", "100%%"],
    ["$HOME", "$$HOME"],
    ["a b", '"a b"'],
    ['say "hi"', '"say \\"hi\\""'],
    ["back\\slash", '"back\\\\slash"'],
  ];
  for (const [input, want] of cases) {
    await t.step(JSON.stringify(input), () => assert.equal(execArg(input), want));
  }
  assert.throws(() => execArg("a\nb"), InvalidArgumentError);
});

Deno.test("units reject a relative data dir or binary, and a bad memory cap", async (t) => {
  const bad: [string, Partial<typeof OPTS>, RegExp][] = [
    ["relative data dir", { dataDir: "var/lib/faasd" }, /Invalid data dir "var\/lib\/faasd"/],
    ["relative binary", { binary: "faasd" }, /Invalid binary path "faasd"/],
    ["memory cap", { memoryMax: "lots" }, /Invalid memory cap "lots"/],
  ];
  for (const [name, opts, message] of bad) {
    await t.step(
      name,
      () =>
        assert.throws(() => renderUpUnit({ ...OPTS, ...opts }), (err: Error) => {
          assert.ok(err instanceof InvalidArgumentError);
          assert.match(err.message, message);
          return true;
        }),
    );
  }
});

Deno.test("validateMemoryMax() accepts what systemd's MemoryMax= accepts", async (t) => {
  for (const ok of ["512M", "1G", "1073741824", "25%", "infinity", "2T", "64K"]) {
    await t.step(`${ok} is accepted`, () => assert.equal(validateMemoryMax(ok), ok));
  }
  for (const bad of ["", "512MB", "1.5G", "-1", "25 %", "1000%"]) {
    await t.step(
      `${JSON.stringify(bad)} is refused`,
      () => assert.throws(() => validateMemoryMax(bad), InvalidArgumentError),
    );
  }
});
