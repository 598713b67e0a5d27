import assert from "node:assert/strict";
import {
  gatewayIp,
  parseSubnet,
  renderConflist,
  subnetContains,
} from "../../../src/cni/conflist.ts";
import { InvalidArgumentError } from "../../../src/errors.ts";

const base = {
  name: "openfaas-pn",
  bridge: "openfaas0",
  subnet: "10.62.0.0/16",
  ipamDir: "/var/lib/faasd/cni/ipam",
};

Deno.test("renderConflist() renders bridge with host-local IPAM, then firewall", () => {
  assert.deepEqual(renderConflist(base), {
    cniVersion: "1.0.0",
    name: "openfaas-pn",
    plugins: [
      {
        type: "bridge",
        bridge: "openfaas0",
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: "10.62.0.0/16" }]],
          routes: [{ dst: "0.0.0.0/0" }],
          dataDir: "/var/lib/faasd/cni/ipam",
        },
      },
      { type: "firewall" },
    ],
  });
});

Deno.test("renderConflist() takes each option into the right field", async (t) => {
  const cases = [
    {
      name: "small subnet",
      opts: { subnet: "192.168.5.0/30" },
      path: ["plugins", 0, "ipam", "ranges"],
      want: [[{ subnet: "192.168.5.0/30" }]],
    },
    {
      name: "bridge name of 15 chars",
      opts: { bridge: "abcdefghij.k-_1" },
      path: ["plugins", 0, "bridge"],
      want: "abcdefghij.k-_1",
    },
    { name: "network name", opts: { name: "net-2" }, path: ["name"], want: "net-2" },
    {
      name: "ipam dir",
      opts: { ipamDir: "/tmp/x" },
      path: ["plugins", 0, "ipam", "dataDir"],
      want: "/tmp/x",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      // deno-lint-ignore no-explicit-any
      let v: any = renderConflist({ ...base, ...c.opts });
      for (const k of c.path) v = v[k];
      assert.deepEqual(v, c.want);
    });
  }
});

Deno.test("renderConflist() rejects bad subnets and bridge names, naming the option", async (t) => {
  const cases = [
    {
      name: "not a CIDR",
      opts: { subnet: "10.62.0.0" },
      match: /--subnet "10\.62\.0\.0": expected an IPv4 CIDR/,
    },
    { name: "IPv6", opts: { subnet: "fd00::/64" }, match: /--subnet "fd00::\/64"/ },
    { name: "octet over 255", opts: { subnet: "10.256.0.0/16" }, match: /--subnet/ },
    {
      name: "prefix 31",
      opts: { subnet: "10.0.0.0/31" },
      match: /--subnet "10\.0\.0\.0\/31": the prefix length must be between 8 and 30/,
    },
    { name: "prefix 32", opts: { subnet: "10.0.0.1/32" }, match: /--subnet .*between 8 and 30/ },
    {
      name: "host bits set",
      opts: { subnet: "10.62.0.5/16" },
      match: /--subnet "10\.62\.0\.5\/16": host bits are set \(did you mean 10\.62\.0\.0\/16\?\)/,
    },
    {
      name: "bridge too long",
      opts: { bridge: "abcdefghijklmnop" },
      match: /--bridge "abcdefghijklmnop"/,
    },
    { name: "bridge with slash", opts: { bridge: "br/0" }, match: /--bridge "br\/0"/ },
    { name: "bridge empty", opts: { bridge: "" }, match: /--bridge ""/ },
    { name: "bridge with space", opts: { bridge: "br 0" }, match: /--bridge/ },
    { name: "network name with slash", opts: { name: "a/b" }, match: /network name "a\/b"/ },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(() => renderConflist({ ...base, ...c.opts }), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError, String(err));
        assert.match(err.message, c.match);
        return true;
      });
    });
  }
});

Deno.test("gatewayIp() is the first host address of the subnet", async (t) => {
  const cases = [
    ["10.62.0.0/16", "10.62.0.1"],
    ["10.199.7.0/24", "10.199.7.1"],
    ["192.168.5.4/30", "192.168.5.5"],
    ["172.16.0.0/12", "172.16.0.1"],
  ];
  for (const [subnet, want] of cases) {
    await t.step(subnet, () => assert.equal(gatewayIp(subnet), want));
  }
  assert.throws(() => gatewayIp("nonsense"), InvalidArgumentError);
});

Deno.test("subnetContains() and parseSubnet() agree on the network", () => {
  assert.deepEqual(parseSubnet("10.62.0.0/16"), {
    network: (10 << 24 | 62 << 16) >>> 0,
    prefix: 16,
  });
  assert.ok(subnetContains("10.62.0.0/16", "10.62.255.254"));
  assert.ok(!subnetContains("10.62.0.0/16", "10.63.0.1"));
  assert.ok(!subnetContains("10.62.0.0/16", "not-an-ip"));
});
