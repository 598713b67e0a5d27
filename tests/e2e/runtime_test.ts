/**
 * End-to-end: the OCI runtime the shim runs for replicas (`--runtime`). runc when asked for; with
 * `auto` (the default) crun when it is installed and can run on this host's cgroups, runc when not
 * (the reason logged); replicas of both kinds under one appliance, frozen and thawed; a bad
 * `--runtime` stops `faasd up` with a message naming it. A tag pulled again with other content
 * is what the next deploy uses (the appliance remembers images by digest).
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Containerd } from "../../src/containerd/client.ts";
import { crunCgroupProblem, resolveOciRuntime } from "../../src/provider/oci_runtime.ts";
import {
  api,
  type Appliance,
  createNamespace,
  finishAppliance,
  startAppliance,
} from "../fixtures/appliance.ts";
import { freezerState } from "../fixtures/cgroup.ts";
import { functionImage } from "../fixtures/function_image.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";

const SOCKET = "/run/containerd/containerd.sock";

/** The binary containerd's shim runs for a task, from the task's bundle. */
async function shimRuntime(ns: string, id: string): Promise<string> {
  const bundle = `/run/containerd/io.containerd.runtime.v2.task/${ns}/${id}`;
  const options = JSON.parse(await readFile(`${bundle}/options.json`, "utf8").catch(() => "{}"));
  return options.binary_name || "runc";
}

async function deployAndCall(app: Appliance, name: string, ns: string, image: string) {
  const res = await api(app, "POST", "/system/functions", { service: name, image, namespace: ns });
  assert.equal(res.status, 202, res.text);
  const call = await fetch(`${app.url}/function/${name}.${ns}/cgi-bin/version`);
  assert.equal(call.status, 200);
  assert.equal(await call.text(), "rt\n");
}

async function freezeAndThaw(app: Appliance, name: string, ns: string) {
  const scaled = await api(app, "POST", `/system/scale-function/${name}?namespace=${ns}`, {
    replicas: 0,
  });
  assert.equal(scaled.status, 202, scaled.text);
  assert.equal(await freezerState(ns, `${name}-1-0`), "frozen");
  const call = await fetch(`${app.url}/function/${name}.${ns}/cgi-bin/version`);
  assert.equal(await call.text(), "rt\n");
  assert.equal(await freezerState(ns, `${name}-1-0`), "thawed");
}

Deno.test("runtime: runc on request, crun or runc by auto, both under one appliance", async (t) => {
  await using registry = await startRegistry();
  await pushImage(registry, "fn/rt", "1", functionImage("rt"));
  const image = `${registry.host}/fn/rt:1`;
  const client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const ns = `frt-${randomBytes(3).toString("hex")}`;
  let app = await startAppliance({ args: ["--runtime", "runc"] });
  try {
    await t.step("--runtime runc: the shim runs runc", async () => {
      assert.match(app.log(), /"runtime":"runc"/);
      await createNamespace(app, ns);
      await deployAndCall(app, "withrunc", ns, image);
      assert.equal(await shimRuntime(ns, "withrunc-1-0"), "runc");
      await freezeAndThaw(app, "withrunc", ns);
    });

    await t.step("auto: crun when it can run here, else runc with the reason logged", async () => {
      const code = await app.stop();
      assert.equal(code, 0);
      app = await startAppliance({ dataDir: app.dataDir, network: app.network });
      // What this host offers decides the expectation (resolveOciRuntime is unit-tested with
      // every combination); CI installs crun and makes the cgroups suit it (scripts/dev.sh).
      const expected = resolveOciRuntime("auto", { path: Deno.env.get("PATH") });
      console.log(
        `auto on this host: ${expected.name}${expected.note ? ` (${expected.note})` : ""}`,
      );
      assert.match(app.log(), new RegExp(`"runtime":"${expected.name}"`));
      if (expected.note) assert.ok(app.log().includes("crun is installed but not used"));
      await deployAndCall(app, "withauto", ns, image);
      assert.equal(
        await shimRuntime(ns, "withauto-1-0"),
        expected.options.binaryName ?? "runc",
      );
      await freezeAndThaw(app, "withauto", ns);
      // The tag now names other content, pulled by the CLI: the appliance's next deploy must
      // use it, not what it remembers of the tag's previous digest.
      await pushImage(registry, "fn/rt", "1", functionImage("rt2"));
      const pulled = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "main.ts",
          "image",
          "pull",
          image,
          "--namespace",
          ns,
          "--data-dir",
          app.dataDir,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(pulled.code, 0, new TextDecoder().decode(pulled.stderr));
      const retagged = await api(app, "POST", "/system/functions", {
        service: "retagged",
        image,
        namespace: ns,
      });
      assert.equal(retagged.status, 202, retagged.text);
      const fresh = await fetch(`${app.url}/function/retagged.${ns}/cgi-bin/version`);
      assert.equal(await fresh.text(), "rt2\n");
      // The runc replica from before was re-adopted and still serves.
      const old = await fetch(`${app.url}/function/withrunc.${ns}/cgi-bin/version`);
      assert.equal(await old.text(), "rt\n");
      assert.equal(await shimRuntime(ns, "withrunc-1-0"), "runc");
      for (const name of ["withrunc", "withauto", "retagged"]) {
        const res = await api(app, "DELETE", `/system/functions?namespace=${ns}`, {
          functionName: name,
        });
        assert.equal(res.status, 202, res.text);
      }
      assert.deepEqual(await client.tasks.list(ns), []);
    });

    await t.step("a --runtime that cannot be used stops faasd up, naming it", async () => {
      await app.stop();
      await assert.rejects(
        startAppliance({
          dataDir: app.dataDir,
          network: app.network,
          args: ["--runtime", "/no/such/runtime"],
        }),
        /--runtime must be auto, runc, crun or the absolute path of an executable, got "\/no\/such\/runtime"/,
      );
      const problem = crunCgroupProblem((p) => {
        try {
          return Deno.readTextFileSync(p);
        } catch {
          return undefined;
        }
      });
      if (problem) {
        await assert.rejects(
          startAppliance({
            dataDir: app.dataDir,
            network: app.network,
            args: ["--runtime", "crun"],
          }),
          /--runtime crun: .*hybrid/,
        );
      } else {
        console.log(
          "crun can run on this host: the refusal of crun on hybrid cgroups is unit-tested only",
        );
      }
      app = await startAppliance({ dataDir: app.dataDir, network: app.network });
    });
  } catch (err) {
    console.error(app.log());
    throw err;
  } finally {
    await finishAppliance(app, client, { namespace: ns, hadDefaultNamespace: hadDefault });
  }
});
