import assert from "node:assert/strict";
import { InvalidArgumentError, NotFoundError } from "../../../src/errors.ts";
import {
  formatPlatform,
  hostPlatform,
  parsePlatform,
  type Platform,
  platformMatches,
  selectManifest,
} from "../../../src/images/platform.ts";

Deno.test("hostPlatform() names Node's architectures the way images do", async (t) => {
  const cases: Array<{ arch: string; want: Platform }> = [
    { arch: "x64", want: { os: "linux", architecture: "amd64" } },
    { arch: "arm64", want: { os: "linux", architecture: "arm64", variant: "v8" } },
    { arch: "ia32", want: { os: "linux", architecture: "386" } },
    { arch: "riscv64", want: { os: "linux", architecture: "riscv64" } },
    { arch: "s390x", want: { os: "linux", architecture: "s390x" } },
  ];
  for (const c of cases) {
    await t.step(`${c.arch} is ${formatPlatform(c.want)}`, () => {
      assert.deepEqual(hostPlatform(c.arch), c.want);
    });
  }
  await t.step("arm is arm with a v5 to v8 variant (v7 unless Node says otherwise)", () => {
    const p = hostPlatform("arm");
    assert.equal(p.architecture, "arm");
    assert.match(p.variant ?? "", /^v[5-8]$/);
  });
  await t.step("the default is this machine's process.arch", () => {
    assert.equal(hostPlatform().os, "linux");
    assert.ok(hostPlatform().architecture.length > 0);
  });
});

Deno.test("parsePlatform() reads os/architecture[/variant] and formatPlatform() prints it back", async (t) => {
  const cases: Array<{ s: string; want: Platform; printed: string }> = [
    { s: "linux/amd64", want: { os: "linux", architecture: "amd64" }, printed: "linux/amd64" },
    {
      s: "linux/arm/v7",
      want: { os: "linux", architecture: "arm", variant: "v7" },
      printed: "linux/arm/v7",
    },
    {
      s: "linux/arm64/v8",
      want: { os: "linux", architecture: "arm64", variant: "v8" },
      printed: "linux/arm64/v8",
    },
    { s: "Linux/X86_64", want: { os: "linux", architecture: "amd64" }, printed: "linux/amd64" },
    { s: "linux/aarch64", want: { os: "linux", architecture: "arm64" }, printed: "linux/arm64" },
    {
      s: "linux/armhf",
      want: { os: "linux", architecture: "arm", variant: "v7" },
      printed: "linux/arm/v7",
    },
  ];
  for (const c of cases) {
    await t.step(`"${c.s}"`, () => {
      const p = parsePlatform(c.s);
      assert.deepEqual(p, c.want);
      assert.equal(formatPlatform(p), c.printed);
    });
  }
});

Deno.test("parsePlatform() refuses junk with InvalidArgumentError quoting it", async (t) => {
  for (const s of ["", "linux", "amd64", "linux/", "/amd64", "linux/arm/v7/x", "linux/am d64"]) {
    await t.step(`"${s}"`, () => {
      assert.throws(
        () => parsePlatform(s),
        (err: unknown) =>
          err instanceof InvalidArgumentError &&
          err.message ===
            `invalid platform "${s}": expected os/architecture[/variant], e.g. "linux/arm/v7"`,
      );
    });
  }
});

Deno.test("platformMatches() compares os, architecture and normalised variant", async (t) => {
  const P = (os: string, architecture: string, variant?: string): Platform =>
    variant ? { os, architecture, variant } : { os, architecture };
  const cases = [
    { name: "same amd64", want: P("linux", "amd64"), cand: P("linux", "amd64"), ok: true },
    { name: "other arch", want: P("linux", "amd64"), cand: P("linux", "arm64"), ok: false },
    { name: "other os", want: P("linux", "amd64"), cand: P("windows", "amd64"), ok: false },
    {
      name: "arm64 '' is v8",
      want: P("linux", "arm64", "v8"),
      cand: P("linux", "arm64"),
      ok: true,
    },
    {
      name: "arm64 v8 is ''",
      want: P("linux", "arm64"),
      cand: P("linux", "arm64", "v8"),
      ok: true,
    },
    { name: "arm '' is v7", want: P("linux", "arm", "v7"), cand: P("linux", "arm"), ok: true },
    {
      name: "arm v6 is not v7",
      want: P("linux", "arm", "v7"),
      cand: P("linux", "arm", "v6"),
      ok: false,
    },
    { name: "arm v6 is not ''", want: P("linux", "arm", "v6"), cand: P("linux", "arm"), ok: false },
    { name: "case is ignored", want: P("linux", "amd64"), cand: P("Linux", "AMD64"), ok: true },
    { name: "x86_64 is amd64", want: P("linux", "amd64"), cand: P("linux", "x86_64"), ok: true },
  ];
  for (const c of cases) {
    await t.step(`${c.name}: ${c.ok ? "matches" : "does not match"}`, () => {
      assert.equal(platformMatches(c.want, c.cand), c.ok);
    });
  }
});

const entry = (digest: string, platform?: Platform) => ({ digest, platform });
const index = [
  entry("sha256:amd64", { os: "linux", architecture: "amd64" }),
  entry("sha256:arm64", { os: "linux", architecture: "arm64", variant: "v8" }),
  entry("sha256:armv6", { os: "linux", architecture: "arm", variant: "v6" }),
  entry("sha256:att", { os: "unknown", architecture: "unknown" }),
  entry("sha256:noplatform"),
];

Deno.test("selectManifest() picks the entry for the platform", async (t) => {
  const cases = [
    { want: "linux/amd64", digest: "sha256:amd64" },
    { want: "linux/arm64", digest: "sha256:arm64" },
    { want: "linux/arm64/v8", digest: "sha256:arm64" },
    { want: "linux/arm/v6", digest: "sha256:armv6" },
    {
      name: "an arm v7 host runs the v6 image when there is no v7",
      want: "linux/arm/v7",
      digest: "sha256:armv6",
    },
  ];
  for (const c of cases) {
    await t.step(c.name ?? `${c.want} → ${c.digest}`, () => {
      assert.equal(selectManifest(parsePlatform(c.want), index).digest, c.digest);
    });
  }
  await t.step("the first of several matches wins, and an exact variant beats an older one", () => {
    const list = [
      entry("sha256:v6", { os: "linux", architecture: "arm", variant: "v6" }),
      entry("sha256:v7a", { os: "linux", architecture: "arm", variant: "v7" }),
      entry("sha256:v7b", { os: "linux", architecture: "arm" }),
    ];
    assert.equal(selectManifest(parsePlatform("linux/arm/v7"), list).digest, "sha256:v7a");
  });
});

Deno.test("selectManifest() without a match throws NotFoundError listing the image's platforms", async (t) => {
  const cases = [
    {
      name: "attestations and entries without a platform are not listed",
      want: "linux/s390x",
      list: index,
      message: "image has no linux/s390x variant; it has linux/amd64, linux/arm64/v8, linux/arm/v6",
    },
    {
      name: "an arm v6 host does not run v7 images",
      want: "linux/arm/v6",
      list: [
        entry("a", { os: "linux", architecture: "amd64" }),
        entry("b", { os: "linux", architecture: "arm", variant: "v7" }),
        entry("c", { os: "linux", architecture: "amd64" }),
      ],
      message: "image has no linux/arm/v6 variant; it has linux/amd64, linux/arm/v7",
    },
    {
      name: "an index without platforms says so",
      want: "linux/amd64",
      list: [entry("x")],
      message: "image has no linux/amd64 variant; it names no platforms",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(
        () => selectManifest(parsePlatform(c.want), c.list),
        (err: unknown) => err instanceof NotFoundError && err.message === c.message,
      );
    });
  }
});
