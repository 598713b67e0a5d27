import { startRegistry } from "../fixtures/registry.ts";
import { pushImage, pushIndex } from "../fixtures/registry_push.ts";
import { buildImage, buildIndex, busyboxLayer, filesLayer } from "../fixtures/oci_image.ts";
Deno.test("smoke", async () => {
  await using reg = await startRegistry();
  const img = buildImage({ layers: [{ tar: busyboxLayer(), compression: "gzip" }, { tar: filesLayer({ "etc/hello": "hi\n" }), compression: "none" }] });
  await pushImage(reg, "test/busybox", "v1", img);
  const idx = buildIndex([img, buildImage({ layers: [{ tar: filesLayer({ a: "b" }), compression: "gzip" }], architecture: "arm64", variant: "v8" })]);
  await pushIndex(reg, "test/multi", "v1", idx);
  for (const args of [["pull", `${reg.host}/test/busybox:v1`], ["pull", `${reg.host}/test/busybox:v1`], ["pull", `${reg.host}/test/multi:v1`], ["pull", `${reg.host}/test/multi:v1`, "--platform", "linux/arm/v7"], ["pull", `${reg.host}/test/nope:v1`], ["ls"], ["prune"], ["ls"]]) {
    const out = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", "main.ts", "image", ...args, "--namespace", "smoke-img", "--data-dir", "/tmp/smoke-dd"] }).output();
    console.log(args.join(" "), out.code, new TextDecoder().decode(out.stdout), new TextDecoder().decode(out.stderr));
  }
  console.log((await reg.requests()).map((r) => `${r.method} ${r.path} ${r.status}`).join("\n"));
});
