/**
 * End-to-end: `faasd up` turns on the kernel's cgroup favordynmods mode (faster container starts)
 * by remounting the host's cgroup2 hierarchy with its other options and flags kept, and leaves it alone with
 * `--cgroup-favordynmods off`. The hierarchy's options are put back as they were at the end.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import {
  type Cgroup2Mount,
  cgroup2Mount,
  FAVOR_DYNMODS,
} from "../../src/provider/cgroup_tuning.ts";
import { removeTestNetwork, startAppliance } from "../fixtures/appliance.ts";

function hostMount(): Cgroup2Mount | undefined {
  return cgroup2Mount(readFileSync("/proc/self/mountinfo", "utf8"));
}

/**
 * Remounts the hierarchy with exactly its `flags` and `options` (mount(8) would otherwise merge
 * the old ones in).
 */
function remountExactly(mountPoint: string, flags: string[], options: string[]): void {
  const r = spawnSync("mount", [
    "--options-source",
    "disable",
    "-o",
    ["remount", ...flags, ...options].join(","),
    mountPoint,
  ], { encoding: "utf8" });
  assert.equal(r.status, 0, `mount -o remount ${mountPoint}: ${r.stderr}`);
}

Deno.test("cgroup favordynmods: on at start by default, untouched with off", async (t) => {
  const before = hostMount();
  if (!before) {
    // Nothing to remount: the appliance must say so and start anyway.
    console.log("this host has no cgroup2 hierarchy: only the appliance's message is checked");
    const app = await startAppliance();
    try {
      assert.match(app.log(), /cgroup favordynmods not turned on.*no cgroup2 hierarchy/);
    } finally {
      await app.stop();
      await removeTestNetwork(app.network, app.dataDir);
    }
    return;
  }
  const others = before.options.filter((o) => o !== FAVOR_DYNMODS);
  remountExactly(before.mountPoint, before.flags, others);
  assert.ok(!hostMount()!.options.includes(FAVOR_DYNMODS), "the test could not turn it off");
  let app = await startAppliance({ args: ["--cgroup-favordynmods", "off"] });
  try {
    await t.step("off: the hierarchy is left as it is", () => {
      assert.deepEqual(hostMount()!.options, others);
      assert.doesNotMatch(app.log(), /favordynmods/);
    });

    await t.step("default: remounted with favordynmods, its other options kept", async () => {
      assert.equal(await app.stop(), 0);
      app = await startAppliance({ dataDir: app.dataDir, network: app.network });
      const line = app.log().split("\n").find((l) => l.includes("cgroup favordynmods"));
      assert.ok(line, "no favordynmods line in the log");
      if (line.includes("not turned on")) {
        // An older kernel (before 6.0) has no such option; the appliance says so and runs on.
        console.log(`favordynmods unavailable here: ${line}`);
        assert.match(line, /Linux 6\.0/);
        assert.deepEqual(hostMount()!.options, others);
        return;
      }
      assert.match(line, /"msg":"cgroup favordynmods on"/);
      assert.ok(line.includes(`"mount":"${before.mountPoint}"`), line);
      assert.deepEqual(hostMount()!.options, [...others, FAVOR_DYNMODS]);
      assert.deepEqual(hostMount()!.flags, before.flags, "the mount point's flags changed");
    });

    await t.step("a second start finds it on", async () => {
      if (!hostMount()!.options.includes(FAVOR_DYNMODS)) {
        console.log("favordynmods unavailable here: nothing to find");
        return;
      }
      assert.equal(await app.stop(), 0);
      app = await startAppliance({ dataDir: app.dataDir, network: app.network });
      assert.match(app.log(), /"msg":"cgroup favordynmods already on"/);
    });
  } finally {
    await app.stop();
    await removeTestNetwork(app.network, app.dataDir);
    remountExactly(before.mountPoint, before.flags, before.options);
  }
});
