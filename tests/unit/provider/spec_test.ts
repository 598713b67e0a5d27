import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { encodeRecord } from "../../../src/provider/function_record.ts";
import {
  buildSpec,
  DEFAULT_PATH,
  type ImageProcessConfig,
  PIDS_LIMIT,
  resolveUser,
  type SpecOptions,
  specResources,
} from "../../../src/provider/spec.ts";
import type { FunctionDeployment } from "../../../src/provider/types.ts";

const image: ImageProcessConfig = {
  Env: ["PATH=/home/app/bin:/usr/bin:/bin", "LANG=C.UTF-8", "mode=http"],
  Entrypoint: ["fwatchdog"],
  Cmd: ["--port", "8080"],
  WorkingDir: "/home/app",
  User: "1000:1000",
};

function options(dep: Partial<FunctionDeployment>, extra: Partial<SpecOptions> = {}): SpecOptions {
  return {
    id: "figlet-1-0",
    namespace: "openfaas-fn",
    deployment: { service: "figlet", image: "figlet", namespace: "openfaas-fn", ...dep },
    imageConfig: image,
    netnsPath: "/run/netns/openfaas-fn-figlet-1-0",
    hostsPath: "/var/lib/faasd/hosts",
    resolvPath: "/var/lib/faasd/resolv.conf",
    secretsDir: "/var/lib/faasd/secrets/openfaas-fn",
    ...extra,
  };
}

// deno-lint-ignore no-explicit-any
type Spec = any;

function mount(spec: Spec, destination: string) {
  return spec.mounts.find((m: { destination: string }) => m.destination === destination);
}

Deno.test("buildSpec() runs the image's process with the deployment's env", async (t) => {
  await t.step("args are Entrypoint then Cmd, cwd is WorkingDir, hostname the name", () => {
    const spec: Spec = buildSpec(options({}));
    assert.deepEqual(spec.process.args, ["fwatchdog", "--port", "8080"]);
    assert.equal(spec.process.cwd, "/home/app");
    assert.equal(spec.hostname, "figlet");
    assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000, additionalGids: [1000] });
  });

  const cases: Array<{
    name: string;
    dep: Partial<FunctionDeployment>;
    config?: ImageProcessConfig;
    env: string[];
  }> = [
    {
      name: "the image's PATH replaces the default in place",
      dep: {},
      env: ["PATH=/home/app/bin:/usr/bin:/bin", "LANG=C.UTF-8", "mode=http"],
    },
    {
      name: "an image without Env gets the default PATH",
      dep: {},
      config: { Cmd: ["/bin/sh"], Env: null },
      env: [`PATH=${DEFAULT_PATH}`],
    },
    {
      name: "envVars override image Env by name and keep = in values",
      dep: { envVars: { mode: "streaming", DSN: "a=b=c" } },
      env: ["PATH=/home/app/bin:/usr/bin:/bin", "LANG=C.UTF-8", "mode=streaming", "DSN=a=b=c"],
    },
    {
      name: "envProcess becomes fprocess and wins over an envVars fprocess",
      dep: { envVars: { fprocess: "cat" }, envProcess: "figlet -f slant" },
      env: [
        "PATH=/home/app/bin:/usr/bin:/bin",
        "LANG=C.UTF-8",
        "mode=http",
        "fprocess=figlet -f slant",
      ],
    },
    {
      name: "envVars may set PATH too",
      dep: { envVars: { PATH: "/opt/bin" } },
      env: ["PATH=/opt/bin", "LANG=C.UTF-8", "mode=http"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const spec: Spec = buildSpec(options(c.dep, c.config ? { imageConfig: c.config } : {}));
      assert.deepEqual(spec.process.env, c.env);
    });
  }

  await t.step("an image with no WorkingDir and no User runs as root in /", () => {
    const spec: Spec = buildSpec(options({}, { imageConfig: { Cmd: ["/bin/sh"] } }));
    assert.equal(spec.process.cwd, "/");
    assert.deepEqual(spec.process.user, { uid: 0, gid: 0 });
  });

  await t.step("an image with neither Entrypoint nor Cmd is refused", () => {
    assert.throws(() => buildSpec(options({}, { imageConfig: { Env: [] } })), {
      name: "InvalidArgumentError",
      message: 'cannot run function "figlet": image "figlet" sets neither Entrypoint nor Cmd',
    });
  });
});

Deno.test("buildSpec() confines the replica", async (t) => {
  const spec: Spec = buildSpec(options({}));

  await t.step("13 capabilities: containerd's defaults without CAP_NET_RAW", () => {
    const caps = spec.process.capabilities;
    assert.equal(caps.bounding.length, 13);
    assert.ok(!caps.bounding.includes("CAP_NET_RAW"));
    assert.ok(caps.bounding.includes("CAP_NET_BIND_SERVICE"));
    assert.deepEqual(caps.effective, caps.bounding);
    assert.deepEqual(caps.permitted, caps.bounding);
    assert.equal(spec.process.noNewPrivileges, true);
  });

  await t.step("cgroup under the namespace, the CNI netns, pids limit, devices denied", () => {
    assert.equal(spec.linux.cgroupsPath, "/openfaas-fn/figlet-1-0");
    assert.deepEqual(spec.linux.namespaces.at(-1), {
      type: "network",
      path: "/run/netns/openfaas-fn-figlet-1-0",
    });
    assert.deepEqual(spec.linux.resources, {
      devices: [{ allow: false, access: "rwm" }],
      pids: { limit: PIDS_LIMIT },
    });
    assert.ok(spec.linux.maskedPaths.includes("/proc/kcore"));
    assert.ok(spec.linux.readonlyPaths.includes("/proc/sys"));
  });

  await t.step("containerd's default mounts plus /run, and hosts and resolv.conf read-only", () => {
    assert.deepEqual(
      spec.mounts.map((m: { destination: string }) => m.destination),
      [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/run",
        "/etc/hosts",
        "/etc/resolv.conf",
      ],
    );
    assert.deepEqual(mount(spec, "/etc/hosts"), {
      destination: "/etc/hosts",
      type: "bind",
      source: "/var/lib/faasd/hosts",
      options: ["rbind", "ro"],
    });
    assert.equal(mount(spec, "/etc/resolv.conf").source, "/var/lib/faasd/resolv.conf");
    assert.deepEqual(spec.root, { path: "rootfs", readonly: false });
  });
});

Deno.test("buildSpec() mounts each requested secret read-only", async (t) => {
  await t.step("one bind mount per secret under /var/openfaas/secrets", () => {
    const spec: Spec = buildSpec(options({ secrets: ["api-key", "db.password"] }));
    assert.deepEqual(mount(spec, "/var/openfaas/secrets/api-key"), {
      destination: "/var/openfaas/secrets/api-key",
      type: "bind",
      source: "/var/lib/faasd/secrets/openfaas-fn/api-key",
      options: ["rbind", "ro"],
    });
    assert.deepEqual(mount(spec, "/var/openfaas/secrets/db.password").options, ["rbind", "ro"]);
  });
  await t.step("secrets without a secrets directory are refused", () => {
    assert.throws(
      () => buildSpec(options({ secrets: ["api-key"] }, { secretsDir: undefined })),
      InvalidArgumentError,
    );
  });
});

Deno.test("buildSpec() with a read-only root adds a writable /tmp", async (t) => {
  const cases: Array<{ name: string; dep: Partial<FunctionDeployment>; opt?: boolean }> = [
    { name: "from the deployment", dep: { readOnlyRootFilesystem: true } },
    { name: "from the option", dep: {}, opt: true },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const spec: Spec = buildSpec(options(c.dep, { readOnlyRootFilesystem: c.opt }));
      assert.equal(spec.root.readonly, true);
      assert.deepEqual(mount(spec, "/tmp"), {
        destination: "/tmp",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "nodev", "mode=1777"],
      });
    });
  }
  await t.step("a writable root has no /tmp mount", () => {
    assert.equal(mount(buildSpec(options({})), "/tmp"), undefined);
  });
});

Deno.test("buildSpec() applies memory and cpu from the deployment's limits and requests", async (t) => {
  const cases: Array<{ name: string; dep: Partial<FunctionDeployment>; want: object }> = [
    {
      name: "memory limit in bytes",
      dep: { limits: { memory: "128Mi" } },
      want: { memory: { limit: 134217728 } },
    },
    {
      name: "cpu limit as CFS quota and period",
      dep: { limits: { cpu: "500m" } },
      want: { cpu: { quota: 50000, period: 100000 } },
    },
    {
      name: "cpu request as shares",
      dep: { requests: { cpu: "0.25", memory: "10Mi" } },
      want: { cpu: { shares: 256 } },
    },
    {
      name: "all together",
      dep: { limits: { memory: "1G", cpu: "2" }, requests: { cpu: "1" } },
      want: { memory: { limit: 1e9 }, cpu: { quota: 200000, period: 100000, shares: 1024 } },
    },
    { name: "none", dep: {}, want: {} },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const dep = { service: "f", image: "f", ...c.dep };
      const spec: Spec = buildSpec(options(c.dep, specResources(dep)));
      assert.deepEqual(spec.linux.resources, {
        devices: [{ allow: false, access: "rwm" }],
        pids: { limit: PIDS_LIMIT },
        ...c.want,
      });
    });
  }
});

Deno.test("buildSpec() carries the function record in its annotations", () => {
  const dep = { service: "figlet", image: "figlet", namespace: "openfaas-fn" };
  const { annotations } = encodeRecord(dep, { generation: 1, createdAt: new Date(0), replica: 0 });
  const spec: Spec = buildSpec(options({}, { annotations }));
  assert.deepEqual(spec.annotations, annotations);
  assert.equal("annotations" in buildSpec(options({})), false);
});

Deno.test("resolveUser() turns an image USER into ids", async (t) => {
  const passwd = [
    "root:x:0:0:root:/root:/bin/sh",
    "# a comment",
    "app:x:1000:1001:app:/home/app:/sbin/nologin",
    "",
  ].join("\n");
  const group = ["root:x:0:root", "app:x:1001:", "docker:x:999:app,other", "audio:x:29:"].join(
    "\n",
  );
  const cases: Array<{ name: string; user: string; want: object; files?: boolean }> = [
    { name: "empty is root", user: "", want: { uid: 0, gid: 0 } },
    {
      name: "a numeric uid without passwd gets gid 0",
      user: "1000",
      want: { uid: 1000, gid: 0, additionalGids: [0] },
    },
    { name: "uid:gid", user: "1000:1000", want: { uid: 1000, gid: 1000, additionalGids: [1000] } },
    {
      name: "root by name needs no passwd",
      user: "root",
      want: { uid: 0, gid: 0, additionalGids: [0] },
    },
    {
      name: "root:root needs no group file",
      user: "root:root",
      want: { uid: 0, gid: 0, additionalGids: [0] },
    },
    {
      name: "a name from passwd with its groups",
      user: "app",
      files: true,
      want: { uid: 1000, gid: 1001, additionalGids: [1001, 999] },
    },
    {
      name: "a numeric uid found in passwd takes its gid",
      user: "1000",
      files: true,
      want: { uid: 1000, gid: 1001, additionalGids: [1001, 999] },
    },
    {
      name: "name:group from the files",
      user: "app:audio",
      files: true,
      want: { uid: 1000, gid: 29, additionalGids: [29, 999] },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const got = c.files ? resolveUser(c.user, passwd, group) : resolveUser(c.user);
      assert.deepEqual(got, c.want);
    });
  }

  const errors: Array<{ name: string; user: string; message: RegExp; files?: boolean }> = [
    {
      name: "a user name without passwd suggests a numeric USER",
      user: "app",
      message:
        /^cannot resolve image USER "app": user "app" is not in the image's \/etc\/passwd; use a numeric USER such as "1000:1000"$/,
    },
    {
      name: "an unknown user name",
      user: "nobody",
      files: true,
      message: /user "nobody" is not in the image's \/etc\/passwd/,
    },
    {
      name: "an unknown group name",
      user: "1000:staff",
      files: true,
      message: /group "staff" is not in the image's \/etc\/group/,
    },
    { name: "a uid beyond 32 bits", user: "4294967296", message: /id 4294967296 is too large/ },
  ];
  for (const c of errors) {
    await t.step(c.name, () => {
      assert.throws(
        () => (c.files ? resolveUser(c.user, passwd, group) : resolveUser(c.user)),
        (err: Error) => {
          assert.ok(err instanceof InvalidArgumentError);
          assert.match(err.message, c.message);
          return true;
        },
      );
    });
  }

  await t.step("buildSpec() uses the passwd and group text it is given", () => {
    const spec: Spec = buildSpec(
      options({}, { imageConfig: { Cmd: ["x"], User: "app" }, etcPasswd: passwd, etcGroup: group }),
    );
    assert.deepEqual(spec.process.user, { uid: 1000, gid: 1001, additionalGids: [1001, 999] });
  });
});
