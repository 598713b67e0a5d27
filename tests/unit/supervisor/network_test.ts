import assert from "node:assert/strict";
import type { AddOptions } from "../../../src/cni/plugins.ts";
import { silentLogger } from "../../../src/log.ts";
import { serviceConflist, serviceNetwork } from "../../../src/supervisor/network.ts";

Deno.test("serviceConflist() adds the ips and mac capabilities to the IPAM plugin only", () => {
  const out = serviceConflist({
    cniVersion: "1.0.0",
    name: "faasd-ts",
    plugins: [{ type: "bridge", ipam: { type: "host-local" } }, { type: "firewall" }],
  });
  assert.deepEqual(out.plugins[0].capabilities, { ips: true, mac: true });
  assert.equal(out.plugins[1].capabilities, undefined);
});

function fakeCni(taken: Set<string>) {
  const calls: Array<AddOptions["runtimeConfig"]> = [];
  let next = 2;
  return {
    calls,
    add: (_id: string, _netns: string, opts: AddOptions = {}) => {
      calls.push(opts.runtimeConfig);
      const wanted = (opts.runtimeConfig?.ips as string[] | undefined)?.[0]?.split("/")[0];
      if (wanted && taken.has(wanted)) return Promise.reject(new Error("address in use"));
      const ip = wanted ?? `10.0.0.${next++}`;
      const mac = (opts.runtimeConfig?.mac as string) ?? `02:00:00:00:00:0${next}`;
      return Promise.resolve({
        ip,
        address: `${ip}/24`,
        gateway: "10.0.0.1",
        raw: {
          cniVersion: "1.0.0",
          interfaces: [{ name: "veth1", mac: "aa:aa:aa:aa:aa:aa" }, {
            name: "eth0",
            mac,
            sandbox: "/proc/1/ns/net",
          }],
          ips: [{ address: `${ip}/24`, gateway: "10.0.0.1", interface: 1 }],
        },
      });
    },
    del: () => Promise.resolve(),
  };
}

Deno.test("serviceNetwork() asks for the previous IP and MAC, and falls back when taken", async () => {
  const taken = new Set<string>();
  const cni = fakeCni(taken);
  const net = serviceNetwork(cni, 24, silentLogger);
  const first = await net.add("ns.web", "/proc/1/ns/net");
  assert.deepEqual(cni.calls[0], undefined, "the first start takes any address");
  const second = await net.add("ns.web", "/proc/2/ns/net");
  assert.equal(second.ip, first.ip);
  assert.deepEqual(cni.calls[1], { ips: [`${first.ip}/24`], mac: net.last?.mac });
  assert.match(net.last?.mac ?? "", /^02:/, "the container side's MAC, not the host veth's");
  taken.add(first.ip);
  const third = await net.add("ns.web", "/proc/3/ns/net");
  assert.notEqual(third.ip, first.ip);
  assert.equal(cni.calls.length, 4, "one refused request, then any address");
});
