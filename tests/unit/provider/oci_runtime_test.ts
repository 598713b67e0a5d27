import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { crunCgroupProblem, resolveOciRuntime } from "../../../src/provider/oci_runtime.ts";

const withCrun = (name: string, dirs: string[]) =>
  name === "crun" && dirs.includes("/opt/bin") ? "/opt/bin/crun" : undefined;
const without = () => undefined;
const pureV2 = () => undefined;
const hybrid = (controllers: string) => (path: string) =>
  path === "/sys/fs/cgroup/unified/cgroup.controllers" ? controllers : undefined;

Deno.test("auto picks crun from PATH when the cgroups suit it, else runc", () => {
  const crun = resolveOciRuntime("auto", { path: "/opt/bin", find: withCrun, readFile: pureV2 });
  assert.deepEqual(crun, { name: "crun", options: { binaryName: "/opt/bin/crun" } });
  const runc = resolveOciRuntime("auto", { path: "/opt/bin", find: without, readFile: pureV2 });
  assert.deepEqual(runc, { name: "runc", options: {} });
});

Deno.test("auto falls back to runc on a hybrid host whose v2 hierarchy holds controllers, and says why", () => {
  const rt = resolveOciRuntime("auto", {
    path: "/opt/bin",
    find: withCrun,
    readFile: hybrid("hugetlb\n"),
  });
  assert.equal(rt.name, "runc");
  assert.deepEqual(rt.options, {});
  assert.match(rt.note ?? "", /crun is installed but not used: .*hybrid.*\(hugetlb\)/);
  // A hybrid host with an empty v2 hierarchy is fine for crun.
  const ok = resolveOciRuntime("auto", {
    path: "/opt/bin",
    find: withCrun,
    readFile: hybrid("\n"),
  });
  assert.equal(ok.name, "crun");
});

Deno.test("an explicit crun that is missing or cannot run is an error naming the fix", () => {
  assert.throws(
    () => resolveOciRuntime("crun", { find: without, readFile: pureV2 }),
    (e: Error) => e instanceof InvalidArgumentError && /apt-get install crun/.test(e.message),
  );
  assert.throws(
    () =>
      resolveOciRuntime("crun", { path: "/opt/bin", find: withCrun, readFile: hybrid("hugetlb") }),
    (e: Error) => e instanceof InvalidArgumentError && /--runtime runc/.test(e.message),
  );
});

Deno.test("runc needs nothing; a path must be an executable file", () => {
  assert.deepEqual(resolveOciRuntime("runc", { find: without }), { name: "runc", options: {} });
  assert.deepEqual(resolveOciRuntime("/bin/sh"), {
    name: "/bin/sh",
    options: { binaryName: "/bin/sh" },
  });
  const notExecutable = Deno.makeTempFileSync();
  Deno.chmodSync(notExecutable, 0o644);
  for (const bad of ["/no/such/runtime", notExecutable, "relative/crun"]) {
    assert.throws(
      () => resolveOciRuntime(bad),
      (e: Error) => e instanceof InvalidArgumentError && e.message.includes(bad),
      bad,
    );
  }
  Deno.removeSync(notExecutable);
});

Deno.test("crunCgroupProblem lists the controllers in the v2 hierarchy", () => {
  assert.equal(crunCgroupProblem(pureV2), undefined);
  assert.match(crunCgroupProblem(hybrid("hugetlb rdma"))!, /\(hugetlb, rdma\)/);
});
