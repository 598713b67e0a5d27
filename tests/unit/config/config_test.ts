import assert from "node:assert/strict";
import { DEFAULTS, resolveConfig } from "../../../src/config/config.ts";
import { InvalidArgumentError } from "../../../src/errors.ts";

Deno.test("resolveConfig() prefers flags, then env, then defaults", async (t) => {
  const cases = [
    { name: "defaults when nothing is set", flags: {}, env: {}, want: DEFAULTS },
    {
      name: "env overrides defaults",
      flags: {},
      env: { FAASD_DATA_DIR: "/srv/faasd", FAASD_PORT: "9090", FAASD_LOG_LEVEL: "debug" },
      want: { ...DEFAULTS, dataDir: "/srv/faasd", port: 9090, logLevel: "debug" },
    },
    {
      name: "flags override env",
      flags: { dataDir: "/tmp/x", port: "0", providerPort: "18081" },
      env: { FAASD_DATA_DIR: "/srv/faasd", FAASD_PORT: "9090" },
      want: { ...DEFAULTS, dataDir: "/tmp/x", port: 0, providerPort: 18081 },
    },
    {
      name: "an empty env value counts as unset",
      flags: {},
      env: { FAASD_CONTAINERD_SOCKET: "" },
      want: DEFAULTS,
    },
    {
      name: "network options from flags and env",
      flags: { bridge: "fn0", subnet: "10.99.0.0/24" },
      env: { FAASD_DNS: "1.1.1.1,9.9.9.9" },
      want: { ...DEFAULTS, bridge: "fn0", subnet: "10.99.0.0/24", dns: "1.1.1.1,9.9.9.9" },
    },
    {
      name: "gateway options from flags and env",
      flags: { queue: "nats://127.0.0.1:4222", maxBodySize: "1Mi" },
      env: { FAASD_UPSTREAM_TIMEOUT: "2m30s" },
      want: {
        ...DEFAULTS,
        queue: "nats://127.0.0.1:4222",
        maxBodySize: "1Mi",
        upstreamTimeout: "2m30s",
      },
    },
    {
      name: "trailing slashes are dropped from paths",
      flags: { dataDir: "/var/lib/faasd-test//" },
      env: {},
      want: { ...DEFAULTS, dataDir: "/var/lib/faasd-test" },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.deepEqual({ ...resolveConfig(c.flags, c.env) }, c.want);
    });
  }
});

Deno.test("resolveConfig() returns a frozen object", () => {
  const config = resolveConfig({}, {});
  assert.ok(Object.isFrozen(config));
});

Deno.test("resolveConfig() names the flag or variable whose value is wrong", async (t) => {
  const cases = [
    { name: "relative data dir flag", flags: { dataDir: "faasd" }, env: {}, want: /--data-dir/ },
    {
      name: "relative socket from env",
      flags: {},
      env: { FAASD_CONTAINERD_SOCKET: "run/c.sock" },
      want: /FAASD_CONTAINERD_SOCKET must be an absolute path, got "run\/c.sock"/,
    },
    { name: "port out of range", flags: { port: "65536" }, env: {}, want: /--port must be/ },
    { name: "port not a number", flags: { providerPort: "80a" }, env: {}, want: /--provider-port/ },
    { name: "negative port", flags: { port: "-1" }, env: {}, want: /--port/ },
    { name: "bad log level", flags: {}, env: { FAASD_LOG_LEVEL: "loud" }, want: /FAASD_LOG_LEVEL/ },
    {
      name: "bridge name too long",
      flags: { bridge: "a-very-long-bridge0" },
      env: {},
      want: /--bridge/,
    },
    {
      name: "subnet not a CIDR",
      flags: { subnet: "10.62.0.0" },
      env: {},
      want: /--subnet must be an IPv4 CIDR/,
    },
    { name: "dns not addresses", flags: {}, env: { FAASD_DNS: "dns.example" }, want: /FAASD_DNS/ },
    { name: "unknown queue", flags: { queue: "redis://x" }, env: {}, want: /--queue must be file/ },
    {
      name: "timeout without a unit",
      flags: { upstreamTimeout: "60" },
      env: {},
      want: /--upstream-timeout must be a duration/,
    },
    {
      name: "size with a bad unit",
      flags: {},
      env: { FAASD_MAX_BODY_SIZE: "1TB" },
      want: /FAASD_MAX_BODY_SIZE/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(() => resolveConfig(c.flags, c.env), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, c.want);
        return true;
      });
    });
  }
});
