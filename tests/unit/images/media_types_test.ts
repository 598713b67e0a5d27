import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { MediaType, parseManifestDocument } from "../../../src/images/media_types.ts";

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const d = (n: number) => ({ mediaType: "x", digest: `sha256:${String(n).repeat(64)}`, size: n });

Deno.test("parseManifestDocument() reads indexes with platforms and manifests", () => {
  const index = parseManifestDocument(
    MediaType.ociIndex,
    enc({
      manifests: [{ ...d(1), platform: { os: "linux", architecture: "arm", variant: "v7" } }],
    }),
    "x",
  );
  assert.equal(index.kind, "index");
  if (index.kind === "index") {
    assert.deepEqual(index.index.manifests[0].platform, {
      os: "linux",
      architecture: "arm",
      variant: "v7",
    });
  }
  // A Docker v2 manifest may leave its media type out of the body.
  const manifest = parseManifestDocument("", enc({ config: d(2), layers: [d(3)] }), "x");
  assert.equal(manifest.kind, "manifest");
});

Deno.test("parseManifestDocument() refuses schema 1, junk and bad digests by name", async (t) => {
  const cases: Array<[string, string, Uint8Array, RegExp]> = [
    ["schema 1", MediaType.dockerSchema1, enc({}), /schema 1/],
    ["not JSON", MediaType.ociManifest, new TextEncoder().encode("{"), /not valid JSON/],
    ["no config", MediaType.ociManifest, enc({ layers: [] }), /no config/],
    [
      "bad digest",
      MediaType.ociManifest,
      enc({ config: { digest: "md5:x" }, layers: [] }),
      /invalid digest "md5:x"/,
    ],
    ["unknown type", "text/plain", enc({}), /unsupported media type "text\/plain"/],
  ];
  for (const [name, type, bytes, want] of cases) {
    await t.step(name, () => {
      assert.throws(() => parseManifestDocument(type, bytes, "img"), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, want);
        return true;
      });
    });
  }
});
