/**
 * End-to-end: pulling and importing images with our own registry client into the real
 * containerd, from Debian's real registry (open and htpasswd-protected) on 127.0.0.1.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Containerd } from "../../src/containerd/client.ts";
import {
  InvalidArgumentError,
  NotFoundError,
  TimeoutError,
  UnauthenticatedError,
  UnavailableError,
} from "../../src/errors.ts";
import { hostPlatform } from "../../src/images/platform.ts";
import { createImageService } from "../../src/images/service.ts";
import { chainIds } from "../../src/images/unpack.ts";
import { silentLogger } from "../../src/log.ts";
import { defaultSpec } from "../fixtures/busybox.ts";
import { dockerSaveTar, ociLayoutTar } from "../fixtures/image_archive.ts";
import { purgeNamespace } from "../fixtures/namespace.ts";
import {
  buildImage,
  buildIndex,
  type BuiltImage,
  busyboxLayer,
  filesLayer,
} from "../fixtures/oci_image.ts";
import { blobDownloads, startRegistry } from "../fixtures/registry.ts";
import { pushImage, pushIndex } from "../fixtures/registry_push.ts";
import { gzip, tar } from "../fixtures/tar.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SOCKET = "/run/containerd/containerd.sock";
const HOST_ARCH = hostPlatform().architecture;

function busyboxImage(extra: Record<string, string> = {}, format: "oci" | "docker" = "oci") {
  return buildImage({
    format,
    architecture: HOST_ARCH,
    layers: [
      { tar: busyboxLayer(), compression: "gzip" },
      {
        tar: filesLayer({ "etc/greeting": "hello from the image\n", ...extra }),
        compression: "none",
      },
    ],
  });
}

/** A namespace, a data dir and an image service, all removed afterwards. */
async function withEnv(
  fn: (env: {
    client: Containerd;
    ns: string;
    dataDir: string;
    images: ReturnType<typeof createImageService>;
  }) => Promise<void>,
  opts: { registryTimeoutMs?: number } = {},
) {
  const client = await Containerd.connect({ socket: SOCKET });
  const ns = `faasd-e2e-img-${randomBytes(4).toString("hex")}`;
  const dataDir = await mkdtemp(join(tmpdir(), "faasd-img-"));
  try {
    await client.namespaces.create(ns);
    const images = createImageService({ containerd: client, dataDir, log: silentLogger, ...opts });
    await fn({ client, ns, dataDir, images });
  } finally {
    const failures = await purgeNamespace(client, ns);
    await client.close();
    await rm(dataDir, { recursive: true, force: true });
    assert.deepEqual(failures, [], "cleanup");
  }
}

/** Runs `faasd` from source; returns exit code and output. */
async function faasd(args: string[], stdin?: Uint8Array) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs a command in a container made from the pulled image and returns its output. */
async function runIn(
  client: Containerd,
  ns: string,
  image: string,
  chainId: string,
  args: string[],
) {
  const id = `run-${randomBytes(3).toString("hex")}`;
  const log = join(await mkdtemp(join(tmpdir(), "faasd-img-run-")), "out.log");
  const lease = await client.leases.create(ns);
  try {
    const mounts = await client.snapshots.prepare(ns, id, chainId, {}, { lease: lease.id });
    await client.containers.create(ns, {
      id,
      image,
      spec: defaultSpec({ namespace: ns, id, args }),
      snapshotKey: id,
    }, { lease: lease.id });
    await client.tasks.create(ns, id, mounts, { stdout: `file://${log}`, stderr: `file://${log}` });
    const exited = client.tasks.wait(ns, id);
    await client.tasks.start(ns, id);
    const { exitStatus } = await exited;
    await client.tasks.delete(ns, id);
    await client.snapshots.remove(ns, id);
    await client.containers.delete(ns, id);
    return { exitStatus, output: await Deno.readTextFile(log) };
  } finally {
    await client.leases.delete(ns, lease.id);
    await rm(join(log, ".."), { recursive: true, force: true });
  }
}

Deno.test("images: pull, re-pull, platforms, prune and bad references against a real registry", async (t) => {
  await using registry = await startRegistry();
  // A layer unique to this run: containerd shares blobs across namespaces, so a layer another
  // test already stored would not be downloaded again.
  const image = busyboxImage({ "etc/run-id": randomBytes(8).toString("hex") });
  await pushImage(registry, "test/busybox", "v1", image);
  const arm64 = buildImage({
    architecture: "arm64",
    variant: "v8",
    layers: [{ tar: filesLayer({ "arch": "arm64\n" }), compression: "gzip" }],
  });
  const armv7 = buildImage({
    architecture: "arm",
    variant: "v7",
    layers: [{ tar: filesLayer({ "arch": "armv7\n" }), compression: "gzip" }],
  });
  const index = buildIndex([busyboxImage({ arch: "host\n" }), arm64, armv7]);
  await pushIndex(registry, "test/multi", "v1", index);
  const ref = `${registry.host}/test/busybox:v1`;

  await withEnv(async ({ client, ns, images }) => {
    await t.step("pull stores the image, unpacks it, and a container runs from it", async () => {
      const pulled = await images.pull(ref, { namespace: ns });
      assert.equal(pulled.target.digest, image.manifest.digest);
      assert.equal(pulled.layers.length, 2);
      assert.ok(
        pulled.downloadedBytes >= image.layers[1].size,
        `downloaded ${pulled.downloadedBytes} of ${image.layers[1].size}`,
      );
      const record = await client.images.get(ns, ref);
      assert.equal(record.target.digest, image.manifest.digest);
      const top = chainIds(image.layers.map((l) => l.diffId)).at(-1)!;
      assert.equal(pulled.chainId, top);
      await client.snapshots.stat(ns, top);
      const config = await client.content.info(ns, image.config.digest);
      assert.equal(config.labels["containerd.io/gc.ref.snapshot.overlayfs"], top);
      const gz = await client.content.info(ns, image.layers[0].digest);
      assert.equal(gz.labels["containerd.io/uncompressed"], image.layers[0].diffId);
      const run = await runIn(client, ns, ref, top, ["/bin/cat", "/etc/greeting"]);
      assert.equal(run.exitStatus, 0);
      assert.equal(run.output, "hello from the image\n");
    });

    await t.step("a re-pull downloads no blob", async () => {
      const mark = await registry.mark();
      const again = await images.pull(ref, { namespace: ns });
      assert.equal(again.downloadedBytes, 0);
      const requests = await registry.requests(mark);
      assert.deepEqual(blobDownloads(requests), [], JSON.stringify(requests));
    });

    await t.step(
      "pull policies: IfNotPresent and Never use the local image, Always asks",
      async () => {
        let mark = await registry.mark();
        const local = await images.ensure(ref, { namespace: ns, policy: "IfNotPresent" });
        assert.equal(local.pulled, false);
        assert.equal(local.target.digest, image.manifest.digest);
        assert.equal((await images.ensure(ref, { namespace: ns, policy: "Never" })).pulled, false);
        assert.deepEqual(await registry.requests(mark), [], "no registry contact");
        mark = await registry.mark();
        assert.equal((await images.ensure(ref, { namespace: ns, policy: "Always" })).pulled, true);
        assert.deepEqual(
          (await registry.requests(mark)).map((r) => `${r.method} ${r.status}`),
          ["HEAD 200"],
        );
        await assert.rejects(
          images.ensure(`${registry.host}/test/absent:1`, { namespace: ns, policy: "Never" }),
          (err: Error) => err instanceof NotFoundError && /pull policy is Never/.test(err.message),
        );
      },
    );

    await t.step("a multi-arch index yields the host's variant, or the one asked for", async () => {
      const host = await images.pull(`${registry.host}/test/multi:v1`, { namespace: ns });
      assert.equal(host.target.digest, index.manifest.digest);
      assert.equal(host.manifest.digest, index.images[0].manifest.digest);
      const arm = await images.pull(`${registry.host}/test/multi:v1`, {
        namespace: ns,
        platform: { os: "linux", architecture: "arm", variant: "v7" },
      });
      assert.equal(arm.manifest.digest, armv7.manifest.digest);
      assert.equal(arm.platform, "linux/arm/v7");
    });

    await t.step("zstd-compressed layers unpack too", async () => {
      const zimage = buildImage({
        architecture: HOST_ARCH,
        layers: [
          { tar: busyboxLayer(), compression: "zstd" },
          { tar: filesLayer({ "etc/zstd": "zstd layer\n" }), compression: "zstd" },
        ],
      });
      await pushImage(registry, "test/zstd", "v1", zimage);
      const pulled = await images.pull(`${registry.host}/test/zstd:v1`, { namespace: ns });
      const run = await runIn(client, ns, `${registry.host}/test/zstd:v1`, pulled.chainId, [
        "/bin/cat",
        "/etc/zstd",
      ]);
      assert.equal(run.output, "zstd layer\n");
    });

    await t.step("an unsupported platform lists the platforms the image has", async () => {
      await assert.rejects(
        images.pull(`${registry.host}/test/multi:v1`, {
          namespace: ns,
          platform: { os: "linux", architecture: "s390x" },
        }),
        (err: Error) => {
          assert.ok(err instanceof NotFoundError, err.message);
          assert.match(err.message, /linux\/s390x/);
          assert.match(err.message, /linux\/arm64/);
          assert.match(err.message, /linux\/arm\/v7/);
          return true;
        },
      );
    });

    await t.step("an unknown image says so with the registry's message", async () => {
      const missing = `${registry.host}/test/nope:v1`;
      await assert.rejects(images.pull(missing, { namespace: ns }), (err: Error) => {
        assert.ok(err instanceof NotFoundError, err.message);
        assert.match(err.message, new RegExp(`^image not found: ${missing}`));
        assert.match(err.message, /MANIFEST_UNKNOWN/);
        return true;
      });
    });

    await t.step("a manifest whose layer does not match leaves no image record", async () => {
      const bad = busyboxImage({ "bad": "x" });
      // Point the manifest at a blob the registry has, with a wrong size: the bytes that arrive
      // do not match the descriptor.
      const wrong = structuredClone(bad) as BuiltImage;
      const doc = JSON.parse(new TextDecoder().decode(bad.manifest.bytes));
      doc.layers[1].size += 7;
      const bytes = new TextEncoder().encode(JSON.stringify(doc));
      const { createHash } = await import("node:crypto");
      wrong.manifest = {
        ...bad.manifest,
        bytes,
        size: bytes.length,
        digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
      };
      await pushImage(registry, "test/corrupt", "v1", wrong);
      await assert.rejects(
        images.pull(`${registry.host}/test/corrupt:v1`, { namespace: ns }),
        InvalidArgumentError,
      );
      await assert.rejects(
        client.images.get(ns, `${registry.host}/test/corrupt:v1`),
        NotFoundError,
      );
    });

    await t.step("prune keeps images a container uses and reports the bytes freed", async () => {
      const top = chainIds(image.layers.map((l) => l.diffId)).at(-1)!;
      const lease = await client.leases.create(ns);
      await client.snapshots.prepare(ns, "keeper", top, {}, { lease: lease.id });
      await client.containers.create(ns, {
        id: "keeper",
        image: ref,
        spec: defaultSpec({ namespace: ns, id: "keeper", args: ["/bin/true"] }),
        snapshotKey: "keeper",
      }, { lease: lease.id });
      await client.leases.delete(ns, lease.id);
      const result = await images.prune(ns);
      assert.deepEqual(result.removed.sort(), [
        `${registry.host}/test/multi:v1`,
        `${registry.host}/test/zstd:v1`,
      ]);
      assert.ok(result.bytesFreed > 0, `freed ${result.bytesFreed}`);
      assert.deepEqual((await images.list(ns)).map((i) => i.name), [ref]);
      await client.snapshots.remove(ns, "keeper");
      await client.containers.delete(ns, "keeper");
    });
  });
});

Deno.test("images: private registry needs credentials from faasd registry login", async () => {
  await using registry = await startRegistry({ auth: { username: "alice", password: "s3cr3t!" } });
  const image = busyboxImage();
  await pushImage(registry, "private/app", "v1", image);
  const ref = `${registry.host}/private/app:v1`;
  await withEnv(async ({ ns, dataDir, images }) => {
    await assert.rejects(images.pull(ref, { namespace: ns }), (err: Error) => {
      assert.ok(err instanceof UnauthenticatedError, err.message);
      assert.match(err.message, new RegExp(registry.host));
      assert.match(err.message, new RegExp(join(dataDir, ".docker/config.json")));
      return true;
    });
    const wrong = await faasd(
      [
        "registry",
        "login",
        registry.host,
        "-u",
        "alice",
        "--password-stdin",
        "--data-dir",
        dataDir,
      ],
      new TextEncoder().encode("wrong\n"),
    );
    assert.equal(wrong.code, 0, wrong.stderr);
    await assert.rejects(images.pull(ref, { namespace: ns }), (err: Error) => {
      assert.ok(err instanceof UnauthenticatedError, err.message);
      assert.match(err.message, /refused the credentials from/);
      return true;
    });
    const login = await faasd(
      [
        "registry",
        "login",
        registry.host,
        "-u",
        "alice",
        "--password-stdin",
        "--data-dir",
        dataDir,
      ],
      new TextEncoder().encode("s3cr3t!\n"),
    );
    assert.equal(login.code, 0, login.stderr);
    assert.doesNotMatch(login.stdout + login.stderr, /s3cr3t/);
    const pulled = await images.pull(ref, { namespace: ns });
    assert.equal(pulled.target.digest, image.manifest.digest);
  });
});

Deno.test("images: a docker.io name is pulled through a mirror from registries.yaml", async () => {
  await using mirror = await startRegistry();
  const image = busyboxImage();
  await pushImage(mirror, "library/faasd-mirror-test", "1.0", image);
  await withEnv(async ({ client, ns, dataDir, images }) => {
    await writeFile(
      join(dataDir, "registries.yaml"),
      `mirrors:\n  docker.io:\n    endpoint:\n      - "${mirror.url}"\n`,
    );
    const pulled = await images.pull("faasd-mirror-test:1.0", { namespace: ns });
    assert.equal(pulled.name, "docker.io/library/faasd-mirror-test:1.0");
    assert.equal(pulled.host, mirror.host);
    const record = await client.images.get(ns, "docker.io/library/faasd-mirror-test:1.0");
    assert.equal(record.target.digest, image.manifest.digest);
  });
});

Deno.test("images: import docker save and OCI layout tarballs, from a file and from stdin", async (t) => {
  const image = busyboxImage();
  await withEnv(async ({ client, ns, dataDir }) => {
    const dir = await mkdtemp(join(tmpdir(), "faasd-import-"));
    try {
      await t.step("docker save tarball from a file", async () => {
        const file = join(dir, "save.tar");
        await writeFile(file, dockerSaveTar(image, ["example.com/saved:1", "saved:latest"]));
        const r = await faasd(["image", "import", file, "--namespace", ns, "--data-dir", dataDir]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /imported example.com\/saved:1/);
        assert.match(r.stdout, /imported docker.io\/library\/saved:latest/);
        const run = await runIn(
          client,
          ns,
          "example.com/saved:1",
          chainIds(image.layers.map((l) => l.diffId)).at(-1)!,
          ["/bin/cat", "/etc/greeting"],
        );
        assert.equal(run.output, "hello from the image\n");
      });

      await t.step("gzip-compressed OCI layout from stdin", async () => {
        const other = busyboxImage({ "etc/other": "2\n" });
        const archive = gzip(ociLayoutTar(other, "example.com/oci:2"));
        const r = await faasd(
          ["image", "import", "-", "--namespace", ns, "--data-dir", dataDir],
          archive,
        );
        assert.equal(r.code, 0, r.stderr);
        const record = await client.images.get(ns, "example.com/oci:2");
        assert.equal(record.target.digest, other.manifest.digest);
      });

      await t.step(
        "a corrupt or unknown archive fails and leaves no image and no content",
        async () => {
          const before = (await client.images.list(ns)).map((i) => i.name).sort();
          const cases: Array<[string, Uint8Array, RegExp]> = [
            ["random bytes", randomBytes(4096), /not a tar archive/],
            [
              "a tar of something else",
              tar([{ type: "file", name: "hello.txt", content: new TextEncoder().encode("hi") }]),
              /neither a docker save archive/,
            ],
            [
              "a truncated docker save",
              dockerSaveTar(image, ["example.com/cut:1"]).subarray(0, 20_000),
              /truncated/,
            ],
          ];
          for (const [name, bytes, want] of cases) {
            const file = join(dir, `${name.replaceAll(" ", "-")}.tar`);
            await writeFile(file, bytes);
            const r = await faasd([
              "image",
              "import",
              file,
              "--namespace",
              ns,
              "--data-dir",
              dataDir,
            ]);
            assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
            assert.match(r.stderr, want, name);
          }
          assert.deepEqual((await client.images.list(ns)).map((i) => i.name).sort(), before);
          assert.deepEqual(await client.leases.list(ns), [], "no lease left behind");
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

Deno.test("images: unreachable and hanging registries fail with the host in the message", async () => {
  // The hanging server first: a port freed before it listened could be the one it gets (seen in
  // CI: the "closed" registry then hung, and the test failed on a timeout).
  const hang = await hangingServer();
  const closed = await freePort();
  try {
    await withEnv(async ({ ns, images }) => {
      await assert.rejects(
        images.pull(`127.0.0.1:${closed}/x/y:1`, { namespace: ns }),
        (err: Error) => {
          assert.ok(err instanceof UnavailableError, err.message);
          assert.match(err.message, new RegExp(`cannot reach registry 127.0.0.1:${closed}`));
          return true;
        },
      );
      await assert.rejects(
        images.pull(`127.0.0.1:${hang.port}/x/y:1`, { namespace: ns }),
        (err: Error) => {
          assert.ok(err instanceof TimeoutError, err.message);
          assert.match(err.message, new RegExp(`registry 127.0.0.1:${hang.port} did not answer`));
          return true;
        },
      );
    }, { registryTimeoutMs: 500 });
  } finally {
    await hang.close();
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A TCP server that accepts connections and never answers. */
function hangingServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<import("node:net").Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        port: (server.address() as { port: number }).port,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
