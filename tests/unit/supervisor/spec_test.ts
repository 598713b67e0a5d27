import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import type { ServiceSpec } from "../../../src/supervisor/compose.ts";
import { serviceArgs, serviceSpec } from "../../../src/supervisor/spec.ts";

const base: ServiceSpec = {
  name: "grafana",
  image: "grafana/grafana:10",
  environment: {},
  dependsOn: [],
  ports: [],
  volumes: [],
  capAdd: [],
  restart: "always",
};
const opts = {
  namespace: "openfaas",
  imageConfig: { Entrypoint: ["/run.sh"], Cmd: ["--default"], Env: ["PATH=/bin", "A=image"] },
  hostsPath: "/data/provider/hosts",
  resolvPath: "/data/provider/resolv.conf",
};

Deno.test("serviceArgs() combines compose and image like Docker", async (t) => {
  const image = { Entrypoint: ["/ep"], Cmd: ["cmd"] };
  const cases: Array<[string, Partial<ServiceSpec>, string[]]> = [
    ["image only", {}, ["/ep", "cmd"]],
    ["command replaces Cmd", { command: ["x", "y"] }, ["/ep", "x", "y"]],
    ["entrypoint drops Cmd", { entrypoint: ["/other"] }, ["/other"]],
    ["both", { entrypoint: ["/other"], command: ["z"] }, ["/other", "z"]],
  ];
  for (const [name, svc, args] of cases) {
    await t.step(name, () => assert.deepEqual(serviceArgs({ ...base, ...svc }, image), args));
  }
});

Deno.test("serviceSpec() applies env, user, cap_add and bind volumes", () => {
  const spec = serviceSpec({
    ...base,
    command: ["--config", "/etc/g.ini"],
    environment: { A: "compose", B: "two" },
    user: "472:0",
    capAdd: ["CAP_NET_ADMIN"],
    volumes: [
      { source: "/srv/g", target: "/var/lib/grafana", readOnly: false },
      { source: "/etc/ssl", target: "/etc/ssl", readOnly: true },
    ],
  }, opts) as {
    process: {
      args: string[];
      env: string[];
      user: { uid: number; gid: number };
      capabilities: Record<string, string[]>;
    };
    hostname: string;
    mounts: Array<{ destination: string; source: string; options: string[] }>;
    linux: { cgroupsPath: string };
  };
  assert.deepEqual(spec.process.args, ["/run.sh", "--config", "/etc/g.ini"]);
  assert.ok(spec.process.env.includes("A=compose"), "compose env overrides the image's");
  assert.ok(spec.process.env.includes("B=two"));
  assert.deepEqual([spec.process.user.uid, spec.process.user.gid], [472, 0]);
  for (const set of ["bounding", "effective", "permitted"]) {
    assert.ok(spec.process.capabilities[set].includes("CAP_NET_ADMIN"), set);
    assert.ok(spec.process.capabilities[set].includes("CAP_CHOWN"), "defaults kept");
  }
  assert.equal(spec.hostname, "grafana");
  assert.equal(spec.linux.cgroupsPath, "/openfaas/grafana");
  const byDest = new Map(spec.mounts.map((m) => [m.destination, m]));
  assert.deepEqual(byDest.get("/var/lib/grafana")?.options, ["rbind", "rw"]);
  assert.deepEqual(byDest.get("/etc/ssl")?.options, ["rbind", "ro"]);
  assert.equal(byDest.get("/etc/hosts")?.source, "/data/provider/hosts");
});

Deno.test("serviceSpec() refuses an image with nothing to run and an unknown user", () => {
  assert.throws(
    () => serviceSpec(base, { ...opts, imageConfig: {} }),
    (err: Error) =>
      err instanceof InvalidArgumentError && /sets neither Entrypoint nor Cmd/.test(err.message),
  );
  assert.throws(
    () => serviceSpec({ ...base, user: "grafana" }, opts),
    (err: Error) =>
      err instanceof InvalidArgumentError &&
      /cannot run service "grafana": cannot resolve user "grafana"/.test(err.message),
  );
  const named = serviceSpec({ ...base, user: "grafana" }, {
    ...opts,
    etcPasswd: "root:x:0:0::/root:/bin/sh\ngrafana:x:472:472::/home:/bin/sh\n",
  }) as { process: { user: { uid: number; gid: number } } };
  assert.deepEqual([named.process.user.uid, named.process.user.gid], [472, 472]);
});
