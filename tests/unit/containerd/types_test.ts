import assert from "node:assert/strict";
import {
  fromTimestamp,
  fromWireDescriptor,
  labelMask,
  toTimestamp,
  toWireDescriptor,
} from "../../../src/containerd/types.ts";

Deno.test("fromTimestamp() treats Go's zero time and a missing value as never", async (t) => {
  const cases = [
    { name: "Go zero time", ts: { seconds: "-62135596800", nanos: 0 }, want: undefined },
    { name: "missing", ts: undefined, want: undefined },
    { name: "unix epoch zero", ts: { seconds: "0", nanos: 0 }, want: undefined },
    {
      name: "a real time with millis",
      ts: { seconds: "1700000000", nanos: 123_456_789 },
      want: new Date(1700000000123),
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(fromTimestamp(c.ts), c.want));
  }
});

Deno.test("toTimestamp() round-trips through fromTimestamp()", () => {
  const d = new Date("2026-11-22T03:04:05.678Z");
  assert.deepEqual(fromTimestamp(toTimestamp(d)), d);
});

Deno.test("descriptors convert sizes from int64 strings and drop empty annotations", () => {
  const d = fromWireDescriptor({
    media_type: "application/vnd.oci.image.manifest.v1+json",
    digest: "sha256:ab",
    size: "1234",
    annotations: {},
  });
  assert.deepEqual(d, {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: "sha256:ab",
    size: 1234,
  });
  assert.equal(toWireDescriptor(d).size, "1234");
});

Deno.test("labelMask() names one path per label", () => {
  assert.deepEqual(labelMask("labels", { "a.b": "1", c: "" }), {
    paths: ["labels.a.b", "labels.c"],
  });
});
