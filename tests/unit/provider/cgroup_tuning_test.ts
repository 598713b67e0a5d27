import assert from "node:assert/strict";
import {
  cgroup2Mount,
  FAVOR_DYNMODS,
  favorDynmods,
  type TuningHost,
} from "../../../src/provider/cgroup_tuning.ts";

// Lines as /proc/self/mountinfo has them on a systemd cgroup v2 host and on a hybrid one.
const V2 = [
  "22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
  "26 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 " +
  "rw,nsdelegate,memory_recursiveprot",
].join("\n");
const HYBRID = [
  "31 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755",
  "32 31 0:27 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu",
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:11 - cgroup2 cgroup2 rw",
  "",
].join("\n");

/** A host whose mount table changes as `remount` is called (or fails with `fail`). */
function fakeHost(
  table: string,
  opts: { fail?: string; ignore?: boolean } = {},
): TuningHost & { calls: Array<[string, string[]]> } {
  const calls: Array<[string, string[]]> = [];
  return {
    calls,
    mountinfo: () => Promise.resolve(table),
    remount: (mountPoint, options) => {
      calls.push([mountPoint, options]);
      if (opts.fail) return Promise.reject(new Error(opts.fail));
      if (!opts.ignore) {
        table = table.split("\n").map((line) =>
          line.includes(` ${mountPoint} `)
            ? `${line.split(" - ")[0]} - cgroup2 cgroup2 rw,${options.join(",")}`
            : line
        ).join("\n");
      }
      return Promise.resolve();
    },
  };
}

Deno.test("cgroup2Mount() finds the host's cgroup2 hierarchy and its options", async (t) => {
  await t.step("a v2 host: /sys/fs/cgroup, rw dropped", () => {
    assert.deepEqual(cgroup2Mount(V2), {
      mountPoint: "/sys/fs/cgroup",
      flags: ["rw", "nosuid", "nodev", "noexec", "relatime"],
      options: ["nsdelegate", "memory_recursiveprot"],
    });
  });
  await t.step("a hybrid host: /sys/fs/cgroup/unified", () => {
    assert.deepEqual(cgroup2Mount(HYBRID), {
      mountPoint: "/sys/fs/cgroup/unified",
      flags: ["rw", "relatime"],
      options: [],
    });
  });
  await t.step("the host's hierarchy before another cgroup2 mount listed first", () => {
    const other = "50 24 0:40 / /run/x\\040y rw - cgroup2 cgroup2 rw\n";
    assert.equal(cgroup2Mount(other + V2)?.mountPoint, "/sys/fs/cgroup");
    assert.equal(cgroup2Mount(other)?.mountPoint, "/run/x y");
  });
  await t.step("a v1-only host has none", () => {
    assert.equal(cgroup2Mount(HYBRID.replace(/.*cgroup2.*\n/, "")), undefined);
  });
});

Deno.test("favorDynmods() remounts with the options the hierarchy had, plus favordynmods", async () => {
  const host = fakeHost(V2);
  assert.deepEqual(await favorDynmods(host), { state: "on", mountPoint: "/sys/fs/cgroup" });
  // The flags, nsdelegate and memory_recursiveprot are kept: a remount resets what it is not given.
  assert.deepEqual(host.calls, [[
    "/sys/fs/cgroup",
    [
      "rw",
      "nosuid",
      "nodev",
      "noexec",
      "relatime",
      "nsdelegate",
      "memory_recursiveprot",
      FAVOR_DYNMODS,
    ],
  ]]);
});

Deno.test("favorDynmods() leaves a hierarchy that has it alone", async () => {
  const host = fakeHost(HYBRID.replace("cgroup2 cgroup2 rw", "cgroup2 cgroup2 rw,favordynmods"));
  assert.deepEqual(await favorDynmods(host), {
    state: "already on",
    mountPoint: "/sys/fs/cgroup/unified",
  });
  assert.equal(host.calls.length, 0);
});

Deno.test("favorDynmods() says why it could not", async (t) => {
  await t.step("no cgroup2 hierarchy", async () => {
    const r = await favorDynmods(fakeHost(HYBRID.replace(/.*cgroup2.*\n/, "")));
    assert.deepEqual(r, { state: "unavailable", reason: "the host has no cgroup2 hierarchy" });
  });
  await t.step("the remount refused (an old kernel, a container)", async () => {
    const r = await favorDynmods(
      fakeHost(V2, { fail: "mount: /sys/fs/cgroup: permission denied." }),
    );
    assert.equal(r.state, "unavailable");
    assert.match(
      (r as { reason: string }).reason,
      /remounting \/sys\/fs\/cgroup with favordynmods failed .*Linux 6\.0.*permission denied/,
    );
  });
  await t.step("the remount succeeded without the option showing", async () => {
    const r = await favorDynmods(fakeHost(HYBRID, { ignore: true }));
    assert.deepEqual(r, {
      state: "unavailable",
      reason: "/sys/fs/cgroup/unified was remounted but does not list favordynmods",
    });
  });
  await t.step("the mount table unreadable", async () => {
    const r = await favorDynmods({
      mountinfo: () => Promise.reject(new Error("EACCES")),
      remount: () => Promise.resolve(),
    });
    assert.deepEqual(r, { state: "unavailable", reason: "cannot read the mount table: EACCES" });
  });
});
