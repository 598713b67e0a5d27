/**
 * End-to-end: the image fixtures against real tools — tar(1) reads what our tar writer writes,
 * Debian's docker-registry (open and htpasswd) stores and serves the images and indexes we push,
 * its access log counts the requests, and stop() leaves nothing behind.
 */

import assert from "node:assert/strict";
import { lstat, mkdtemp, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dockerSaveTar, ociLayoutTar, uncompressedLayer } from "../fixtures/image_archive.ts";
import {
  buildImage,
  buildIndex,
  type BuiltImage,
  busyboxLayer,
  filesLayer,
  MEDIA_TYPES,
  randomLayer,
  sha256,
} from "../fixtures/oci_image.ts";
import { blobDownloads, type Registry, startRegistry } from "../fixtures/registry.ts";
import { basicAuth, pushBlob, pushImage, pushIndex } from "../fixtures/registry_push.ts";
import { readTar, tar } from "../fixtures/tar.ts";

/** Runs a command (Deno.Command, see tests/fixtures/registry.ts); throws on a non-zero exit. */
async function run(cmd: string, args: string[]): Promise<{ stdout: string }> {
  const out = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return { stdout: new TextDecoder().decode(out.stdout) };
}
const decoder = new TextDecoder();

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "faasd-fixtures-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The names `tar -tf` lists for `bytes`. */
async function systemTarList(bytes: Uint8Array): Promise<string[]> {
  return await withTempDir(async (dir) => {
    await writeFile(join(dir, "a.tar"), bytes);
    const { stdout } = await run("tar", ["-tf", join(dir, "a.tar")]);
    return stdout.trim().split("\n");
  });
}

async function get(
  registry: Registry,
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
) {
  const all: Record<string, string> = { ...headers };
  if (registry.auth) all.Authorization = basicAuth(registry.auth);
  const res = await fetch(`${registry.url}${path}`, { method, headers: all });
  const body = new Uint8Array(await res.arrayBuffer());
  return { res, body };
}

/** GETs `repo:reference` accepting only `mediaType` and checks what comes back. */
async function assertManifest(
  registry: Registry,
  repo: string,
  reference: string,
  blob: { bytes: Uint8Array; digest: string; mediaType: string },
) {
  const { res, body } = await get(registry, `/v2/${repo}/manifests/${reference}`, {
    Accept: blob.mediaType,
  });
  assert.equal(res.status, 200, decoder.decode(body));
  assert.equal(res.headers.get("Content-Type"), blob.mediaType);
  assert.equal(res.headers.get("Docker-Content-Digest"), blob.digest);
  assert.equal(sha256(body), blob.digest);
  assert.deepEqual(body, blob.bytes);
}

Deno.test("tar() writes what tar(1) extracts: modes, symlinks, long names in the ustar prefix", async () => {
  const longDir = `${"d".repeat(60)}/${"e".repeat(60)}`;
  const longName = `${longDir}/${"f".repeat(90)}.txt`;
  const archive = tar([
    { type: "directory", name: "tmp", mode: 0o1777 },
    { type: "directory", name: longDir.split("/")[0] },
    { type: "directory", name: longDir },
    { type: "file", name: longName, content: new TextEncoder().encode("deep\n") },
    { type: "file", name: "run.sh", mode: 0o755, content: new TextEncoder().encode("#!/bin/sh\n") },
    { type: "symlink", name: "link", target: "run.sh" },
  ]);
  assert.equal(archive.length % 512, 0);
  assert.deepEqual(await systemTarList(archive), [
    "tmp/",
    `${longDir.split("/")[0]}/`,
    `${longDir}/`,
    longName,
    "run.sh",
    "link",
  ]);
  await withTempDir(async (dir) => {
    await writeFile(join(dir, "a.tar"), archive);
    await run("tar", ["-xpf", join(dir, "a.tar"), "-C", dir]);
    assert.equal((await stat(join(dir, "tmp"))).mode & 0o7777, 0o1777);
    assert.equal((await stat(join(dir, "run.sh"))).mode & 0o777, 0o755);
    assert.equal(await readlink(join(dir, "link")), "run.sh");
    assert.equal(await readFile(join(dir, longName), "utf8"), "deep\n");
  });
  assert.deepEqual(readTar(archive).map((e) => [e.name, e.type]), [
    ["tmp/", "directory"],
    [`${longDir.split("/")[0]}/`, "directory"],
    [`${longDir}/`, "directory"],
    [longName, "file"],
    ["run.sh", "file"],
    ["link", "symlink"],
  ]);
  assert.throws(
    () => tar([{ type: "file", name: `dir/${"x".repeat(101)}`, content: new Uint8Array() }]),
    /does not fit ustar/,
  );
  assert.throws(
    () => tar([{ type: "file", name: `${"p".repeat(160)}/name`, content: new Uint8Array() }]),
    /does not fit ustar/,
  );
});

Deno.test("busyboxLayer() extracts to a tree whose sh runs", async () => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, "layer.tar"), busyboxLayer());
    await run("tar", ["-xpf", join(dir, "layer.tar"), "-C", dir]);
    assert.equal(await readlink(join(dir, "bin/sh")), "busybox");
    assert.ok((await lstat(join(dir, "proc"))).isDirectory());
    assert.equal((await stat(join(dir, "tmp"))).mode & 0o7777, 0o1777);
    const { stdout } = await run(join(dir, "bin/sh"), ["-c", "echo hello"]);
    assert.equal(stdout, "hello\n");
  });
});

Deno.test("an open registry serves pushed images and indexes by tag and digest", async (t) => {
  await using registry = await startRegistry();
  try {
    const base = busyboxLayer();
    const app = filesLayer({ "etc/app.conf": "answer=42\n", "srv/": "" });

    await t.step("an OCI image: manifest, config and layers come back byte for byte", async () => {
      const image = buildImage({
        layers: [{ tar: base, compression: "gzip" }, { tar: app, compression: "none" }],
        config: { Cmd: ["sh"], Env: ["PATH=/bin"], ExposedPorts: { "8080/tcp": {} } },
      });
      const digest = await pushImage(registry, "fixtures/oci", "v1", image);
      assert.equal(digest, image.manifest.digest);
      await assertManifest(registry, "fixtures/oci", "v1", image.manifest);
      await assertManifest(registry, "fixtures/oci", digest, image.manifest);
      const manifest = JSON.parse(decoder.decode(image.manifest.bytes));
      assert.deepEqual(manifest.layers.map((l: { mediaType: string }) => l.mediaType), [
        MEDIA_TYPES.ociLayerGzip,
        MEDIA_TYPES.ociLayer,
      ]);
      const config = JSON.parse(decoder.decode(image.config.bytes));
      assert.deepEqual(config.rootfs, { type: "layers", diff_ids: [sha256(base), sha256(app)] });
      for (const blob of [image.config, ...image.layers]) {
        const { res, body } = await get(registry, `/v2/fixtures/oci/blobs/${blob.digest}`);
        assert.equal(res.status, 200);
        assert.equal(sha256(body), blob.digest);
      }
      assert.deepEqual(uncompressedLayer(image.layers[0]), base);
    });

    await t.step("a Docker schema 2 image and a zstd OCI image", async () => {
      const docker = buildImage({ layers: [{ tar: base, compression: "gzip" }], format: "docker" });
      assert.equal(docker.manifest.mediaType, MEDIA_TYPES.dockerManifest);
      assert.equal(docker.config.mediaType, MEDIA_TYPES.dockerConfig);
      assert.equal(docker.layers[0].mediaType, MEDIA_TYPES.dockerLayerGzip);
      await pushImage(registry, "fixtures/docker", "latest", docker);
      await assertManifest(registry, "fixtures/docker", "latest", docker.manifest);

      const zstd = buildImage({ layers: [{ tar: app, compression: "zstd" }] });
      assert.equal(zstd.layers[0].mediaType, MEDIA_TYPES.ociLayerZstd);
      assert.deepEqual(uncompressedLayer(zstd.layers[0]), app);
      await pushImage(registry, "fixtures/zstd", "latest", zstd);
      await assertManifest(registry, "fixtures/zstd", "latest", zstd.manifest);
    });

    for (const format of ["oci", "docker"] as const) {
      const kind = format === "oci" ? "an OCI index" : "a Docker manifest list";
      await t.step(`${kind} for linux/amd64, linux/arm64 and linux/arm/v7`, async () => {
        const platforms = [
          { architecture: "amd64" },
          { architecture: "arm64" },
          { architecture: "arm", variant: "v7" },
        ];
        const images = platforms.map((p) =>
          buildImage({
            ...p,
            format,
            layers: [{ tar: filesLayer({ "etc/arch": p.architecture }), compression: "gzip" }],
          })
        );
        const index = buildIndex(images, format);
        const repo = `fixtures/multi-${format}`;
        const digest = await pushIndex(registry, repo, "latest", index);
        assert.equal(digest, index.manifest.digest);
        await assertManifest(registry, repo, "latest", index.manifest);
        const parsed = JSON.parse(decoder.decode(index.manifest.bytes));
        assert.equal(
          parsed.mediaType,
          format === "oci" ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.dockerList,
        );
        assert.deepEqual(
          parsed.manifests.map((m: { platform: unknown }) => m.platform),
          [
            { architecture: "amd64", os: "linux" },
            { architecture: "arm64", os: "linux" },
            { architecture: "arm", os: "linux", variant: "v7" },
          ],
        );
        for (const image of images) {
          await assertManifest(registry, repo, image.manifest.digest, image.manifest);
          const config = JSON.parse(decoder.decode(image.config.bytes));
          assert.equal(config.architecture, image.platform.architecture);
        }
      });
    }

    await t.step(
      "distribution 2.8 hides OCI manifests from a GET that does not accept them",
      async () => {
        // What a pull client must know: without the OCI types in Accept this registry answers
        // 404 MANIFEST_UNKNOWN for an OCI manifest or index, and rewrites a Docker schema 2
        // manifest into a signed schema 1 one.
        const oci = buildImage({ layers: [{ tar: app, compression: "gzip" }] });
        await pushImage(registry, "fixtures/accept", "oci", oci);
        const hidden = await get(registry, "/v2/fixtures/accept/manifests/oci", {
          Accept: MEDIA_TYPES.dockerManifest,
        });
        assert.equal(hidden.res.status, 404);
        assert.match(decoder.decode(hidden.body), /accept header does not support OCI manifests/);
        const docker = buildImage({
          layers: [{ tar: app, compression: "gzip" }],
          format: "docker",
        });
        await pushImage(registry, "fixtures/accept", "docker", docker);
        const legacy = await get(registry, "/v2/fixtures/accept/manifests/docker");
        assert.equal(legacy.res.status, 200);
        assert.equal(
          legacy.res.headers.get("Content-Type"),
          "application/vnd.docker.distribution.manifest.v1+prettyjws",
        );
        const head = await get(registry, "/v2/fixtures/accept/manifests/oci", {
          Accept: MEDIA_TYPES.ociManifest,
        }, "HEAD");
        assert.equal(head.res.headers.get("Docker-Content-Digest"), oci.manifest.digest);
        assert.equal(head.res.headers.get("Content-Length"), String(oci.manifest.size));
      },
    );

    await t.step(
      "the access log counts blob downloads, and a re-push uploads nothing",
      async () => {
        const image = buildImage({
          layers: [{ tar: filesLayer({ a: "1" }), compression: "gzip" }],
        });
        await pushImage(registry, "fixtures/count", "v1", image);
        const mark = await registry.mark();
        await get(registry, `/v2/fixtures/count/blobs/${image.layers[0].digest}`);
        await get(registry, `/v2/fixtures/count/manifests/v1`, {
          Accept: image.manifest.mediaType,
        });
        const downloads = blobDownloads(await registry.requests(mark));
        assert.deepEqual(downloads.map((r) => [r.path, r.status]), [
          [`/v2/fixtures/count/blobs/${image.layers[0].digest}`, 200],
        ]);
        assert.equal(downloads[0].bytes, image.layers[0].size);

        const again = await registry.mark();
        await pushImage(registry, "fixtures/count", "v1", image);
        const methods = (await registry.requests(again)).map((r) => `${r.method} ${r.status}`);
        assert.deepEqual(methods.sort(), ["HEAD 200", "HEAD 200", "PUT 201"]);
        assert.ok((await registry.requests()).length > methods.length);
      },
    );

    await t.step("a ~50 MB image (busybox + 4 random 12 MB layers) pushes", async () => {
      const started = performance.now();
      const image = buildImage({
        layers: [
          { tar: base, compression: "gzip" },
          ...[1, 2, 3, 4].map((i) => ({
            tar: randomLayer(12 * 1024 * 1024, `r${i}.bin`),
            compression: "gzip" as const,
          })),
        ],
      });
      const total = image.layers.reduce((n, l) => n + l.size, 0);
      assert.ok(total > 48 * 1024 * 1024, `${total} bytes`);
      const built = performance.now();
      await pushImage(registry, "fixtures/big", "latest", image);
      const pushed = performance.now();
      await assertManifest(registry, "fixtures/big", "latest", image.manifest);
      console.log(
        `built ${(total / 1048576).toFixed(1)} MiB in ${(built - started).toFixed(0)} ms, ` +
          `pushed in ${(pushed - built).toFixed(0)} ms`,
      );
    });
  } catch (err) {
    console.error(`registry stderr:\n${registry.stderr()}`);
    throw err;
  }
});

Deno.test("an htpasswd registry answers anonymous requests with a Basic challenge", async () => {
  const auth = { username: "fixture", password: "s3cret pass:word" };
  await using registry = await startRegistry({ auth });
  try {
    const anonymous = await fetch(`${registry.url}/v2/`);
    await anonymous.body?.cancel();
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get("WWW-Authenticate") ?? "", /^Basic realm="faasd-test"/);

    const wrong = await fetch(`${registry.url}/v2/`, {
      headers: { Authorization: basicAuth({ ...auth, password: "nope" }) },
    });
    await wrong.body?.cancel();
    assert.equal(wrong.status, 401);

    const image = buildImage({ layers: [{ tar: filesLayer({ a: "1" }), compression: "gzip" }] });
    await assert.rejects(
      pushBlob({ url: registry.url }, "private/app", image.config),
      /answered 401/,
    );
    await pushImage(registry, "private/app", "v1", image);
    await assertManifest(registry, "private/app", "v1", image.manifest);
    const denied = await fetch(`${registry.url}/v2/private/app/manifests/v1`, {
      headers: { Accept: image.manifest.mediaType },
    });
    await denied.body?.cancel();
    assert.equal(denied.status, 401);
  } catch (err) {
    console.error(`registry stderr:\n${registry.stderr()}`);
    throw err;
  }
});

Deno.test("stop() ends the registry process and removes its temp dir", async () => {
  const registry = await startRegistry();
  const { pid, dir } = registry;
  assert.ok((await stat(join(dir, "config.yml"))).isFile());
  await registry.stop();
  assert.throws(() => process.kill(pid, 0), { code: "ESRCH" });
  await assert.rejects(stat(dir), { code: "ENOENT" });
  await assert.rejects(fetch(`${registry.url}/v2/`));
  await registry.stop(); // idempotent
});

function archiveImage(): BuiltImage {
  return buildImage({
    layers: [
      { tar: busyboxLayer(), compression: "gzip" },
      { tar: filesLayer({ "etc/hello": "hi\n" }), compression: "none" },
    ],
    config: { Cmd: ["sh", "-c", "cat /etc/hello"] },
    format: "docker",
  });
}

Deno.test("dockerSaveTar() writes manifest.json, <hex>.json and uncompressed <hex>/layer.tar", async () => {
  const image = archiveImage();
  const archive = dockerSaveTar(image, ["example.com/hello:v1"]);
  const hexes = image.layers.map((l) => l.diffId.slice(7));
  const config = `${image.config.digest.slice(7)}.json`;
  assert.deepEqual(await systemTarList(archive), [
    `${hexes[0]}/`,
    `${hexes[0]}/layer.tar`,
    `${hexes[1]}/`,
    `${hexes[1]}/layer.tar`,
    config,
    "manifest.json",
  ]);
  const files = new Map(readTar(archive).map((e) => [e.name, e.content]));
  assert.deepEqual(JSON.parse(decoder.decode(files.get("manifest.json"))), [
    {
      Config: config,
      RepoTags: ["example.com/hello:v1"],
      Layers: hexes.map((h) => `${h}/layer.tar`),
    },
  ]);
  assert.deepEqual(files.get(config), image.config.bytes);
  for (const h of hexes) assert.equal(sha256(files.get(`${h}/layer.tar`)!), `sha256:${h}`);

  const asBuilt = readTar(dockerSaveTar(image, ["hello:v1"], { layers: "as-built" }));
  const gz = asBuilt.find((e) => e.name === `${image.layers[0].digest.slice(7)}/layer.tar`);
  assert.deepEqual(gz?.content, image.layers[0].bytes);
});

Deno.test("ociLayoutTar() writes oci-layout, an annotated index.json and every blob", async () => {
  const image = archiveImage();
  const archive = ociLayoutTar(image, "docker.io/library/hello:v1");
  const blobs = [image.manifest, image.config, ...image.layers].map((b) =>
    `blobs/sha256/${b.digest.slice(7)}`
  );
  assert.deepEqual(await systemTarList(archive), [
    "oci-layout",
    "index.json",
    "blobs/",
    "blobs/sha256/",
    ...blobs,
  ]);
  const files = new Map(readTar(archive).map((e) => [e.name, e.content]));
  assert.deepEqual(JSON.parse(decoder.decode(files.get("oci-layout"))), {
    imageLayoutVersion: "1.0.0",
  });
  assert.deepEqual(JSON.parse(decoder.decode(files.get("index.json"))), {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: [{
      mediaType: MEDIA_TYPES.dockerManifest,
      digest: image.manifest.digest,
      size: image.manifest.size,
      annotations: {
        "io.containerd.image.name": "docker.io/library/hello:v1",
        "org.opencontainers.image.ref.name": "v1",
      },
    }],
  });
  for (const [i, b] of [image.manifest, image.config, ...image.layers].entries()) {
    assert.equal(sha256(files.get(blobs[i])!), b.digest);
  }

  const index = buildIndex([
    image,
    buildImage({
      layers: [{ tar: filesLayer({ a: "1" }), compression: "gzip" }],
      architecture: "arm64",
    }),
  ]);
  const layout = readTar(ociLayoutTar(index, "hello:multi", { annotations: { a: "b" } }));
  const root = JSON.parse(decoder.decode(layout.find((e) => e.name === "index.json")!.content));
  assert.equal(root.manifests[0].digest, index.manifest.digest);
  assert.equal(root.manifests[0].mediaType, MEDIA_TYPES.ociIndex);
  assert.deepEqual(root.manifests[0].annotations, { a: "b" });
  assert.ok(layout.some((e) => e.name === `blobs/sha256/${index.manifest.digest.slice(7)}`));
});
