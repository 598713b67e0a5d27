/**
 * Scenario "images": pulling and unpacking a ~50 MB multi-layer image from a local registry
 * (Debian's docker-registry on 127.0.0.1) with our image service, side by side with
 * `ctr images pull --plain-http` of the same image in the same run, and re-pulling an image
 * that is already present. Every 50 MB pull runs in a fresh `faasd-bench-img-<random>`
 * namespace, which is purged (with synchronous GC) after the iteration; before the next one the
 * scenario checks that the image's blobs are gone from every namespace and from containerd's
 * content store on disk, so each pull really downloads and unpacks everything.
 */

import { randomBytes } from "node:crypto";
import { access, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Containerd } from "../../src/containerd/client.ts";
import { NotFoundError } from "../../src/errors.ts";
import { hostPlatform } from "../../src/images/platform.ts";
import { createImageService, type ImageService } from "../../src/images/service.ts";
import { chainIds, isUnpacked } from "../../src/images/unpack.ts";
import { silentLogger } from "../../src/log.ts";
import { purgeNamespace } from "../../tests/fixtures/namespace.ts";
import { BUSYBOX } from "../../tests/fixtures/busybox.ts";
import { buildImage, type BuiltImage, randomLayer } from "../../tests/fixtures/oci_image.ts";
import {
  blobDownloads,
  type Registry,
  REGISTRY_BINARY,
  startRegistry,
} from "../../tests/fixtures/registry.ts";
import { pushImage } from "../../tests/fixtures/registry_push.ts";
import { tar, type TarEntry } from "../../tests/fixtures/tar.ts";
import { type Figure, measure, type Scenario, type ScenarioContext } from "../harness.ts";

const REPO = "bench/big";
const TAG = "1";
const RANDOM_LAYERS = 4;
const RANDOM_LAYER_BYTES = 12 * 1024 * 1024;
const NS_PREFIX = "faasd-bench-img-";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
// containerd's default root; the content store keeps one file per blob, shared by all namespaces.
const CONTENT_BLOBS = "/var/lib/containerd/io.containerd.content.v1.content/blobs";

const CTR_PULL = "pull+unpack 50 MB (ctr images pull --plain-http)";
const CTR_REPULL = "re-pull present image (ctr)";

/** The images scenario. */
export function imagesScenario(): Scenario {
  return {
    name: "images",
    description:
      "pull+unpack of a ~50 MB image from a local registry vs ctr images pull; re-pull of a present image",
    run,
  };
}

/** What every figure needs: the client, the registry, the image and the namespaces in use. */
interface Env {
  client: Containerd;
  images: ImageService;
  registry: Registry;
  image: BuiltImage;
  ref: string;
  dataDir: string;
  socket: string;
  /** Namespaces created and not yet purged; the cleanup purges whatever is left. */
  live: Set<string>;
}

async function run(ctx: ScenarioContext): Promise<Figure[]> {
  const client = await Containerd.connect({ socket: ctx.containerdSocket });
  ctx.facts.containerd = client.serverVersion.version;
  ctx.facts.containerdRevision = client.serverVersion.revision;
  const live = new Set<string>();
  const failures: string[] = [];
  let registry: Registry | undefined;
  let dataDir: string | undefined;
  const figures: Figure[] = [];
  try {
    dataDir = await mkdtemp(join(tmpdir(), "faasd-bench-img-"));
    registry = await startRegistry();
    ctx.facts.registry = `${await registryVersion()} on ${registry.host}`;
    const image = await buildBigImage();
    await pushImage(registry, REPO, TAG, image);
    const ref = `${registry.host}/${REPO}:${TAG}`;
    const layerBytes = image.layers.reduce((n, l) => n + l.size, 0);
    ctx.facts.image = `${ref}: ${image.layers.length} gzip layers, ${
      (layerBytes / 1e6).toFixed(1)
    } MB compressed, ${image.platform.os}/${image.platform.architecture}`;
    ctx.log(`registry ${registry.host}, image ${ctx.facts.image}`);
    const images = createImageService({ containerd: client, dataDir, log: silentLogger });
    const env: Env = {
      client,
      images,
      registry,
      image,
      ref,
      dataDir,
      socket: ctx.containerdSocket,
      live,
    };
    figures.push(...await freshPullFigures(env, ctx));
    figures.push(...await rePullFigures(env, ctx));
  } finally {
    for (const ns of live) {
      const f = await purgeNamespace(client, ns);
      failures.push(...f.map((m) => `${ns}: ${m}`));
    }
    try {
      const left = (await client.namespaces.list()).filter((n) => live.has(n.name));
      for (const n of left) failures.push(`namespace "${n.name}" still exists`);
    } catch (err) {
      failures.push(`list namespaces: ${(err as Error).message}`);
    }
    await client.close();
    await registry?.stop().catch((err) => failures.push(`stop registry: ${err.message}`));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    for (const f of failures) ctx.log(`cleanup: ${f}`);
  }
  if (failures.length > 0) {
    throw new Error(`cleanup failed: ${failures.join("; ")}`);
  }
  return figures;
}

/**
 * busybox plus four 12 MiB incompressible layers, gzip, for this host's architecture. Every blob
 * is unique to the run: the busybox layer carries a random marker file, because the fixtures'
 * own busybox layer is byte-identical across runs and the e2e tests pull it too; containerd would
 * commit it from another namespace without downloading it.
 */
async function buildBigImage(): Promise<BuiltImage> {
  const platform = hostPlatform();
  return buildImage({
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    layers: [
      { tar: await busyboxLayerForRun(), compression: "gzip" },
      ...Array.from({ length: RANDOM_LAYERS }, (_, i) => ({
        tar: randomLayer(RANDOM_LAYER_BYTES, `random-${i}.bin`),
        compression: "gzip" as const,
      })),
    ],
    config: { Cmd: ["/bin/sh"] },
  });
}

async function busyboxLayerForRun(): Promise<Uint8Array<ArrayBuffer>> {
  const dirs = ["bin", "etc", "proc", "sys", "dev"].map((name): TarEntry => ({
    type: "directory",
    name,
  }));
  return tar([
    ...dirs,
    { type: "directory", name: "tmp", mode: 0o1777 },
    { type: "file", name: "bin/busybox", mode: 0o755, content: await readFile(BUSYBOX) },
    ...["sh", "true", "echo", "cat"].map((a): TarEntry => ({
      type: "symlink",
      name: `bin/${a}`,
      target: "busybox",
    })),
    {
      type: "file",
      name: "etc/faasd-bench-run",
      content: new TextEncoder().encode(`${randomBytes(16).toString("hex")}\n`),
    },
  ]);
}

async function freshPullFigures(env: Env, ctx: ScenarioContext): Promise<Figure[]> {
  const n = ctx.iterations(5);
  const opts = { iterations: n, warmup: warmupFor(n) };
  const layerBytes = env.image.layers.reduce((s, l) => s + l.size, 0);
  ctx.log(`pull+unpack of the 50 MB image × ${n} per client, each in a fresh namespace`);

  const ctrNs = freshNamespaces(env, "ctr");
  const ctrPull = await measure(
    CTR_PULL,
    ctrNs.timed(async (ns) => {
      const out = await ctr(["-n", ns, "images", "pull", "--plain-http", env.ref]);
      // ctr 1.6 fetches everything, then unpacks for the host platform and says so.
      if (!/^unpacking /m.test(out)) throw new Error(`ctr did not unpack:\n${out}`);
    }),
    { ...opts, ...ctrNs.hooks },
  );

  // ctr's fetch waits for its progress display's next 100 ms tick before it returns; --debug
  // turns the display off. Not the baseline (that is ctr as users run it), but it shows the share.
  const dbgNs = freshNamespaces(env, "ctrdbg");
  const ctrDebugPull = await measure(
    "pull+unpack 50 MB (ctr --debug: no progress display)",
    dbgNs.timed(async (ns) => {
      const out = await ctr(["--debug", "-n", ns, "images", "pull", "--plain-http", env.ref]);
      if (!/^unpacking /m.test(out)) throw new Error(`ctr did not unpack:\n${out}`);
    }),
    { ...opts, baseline: CTR_PULL, ...dbgNs.hooks },
  );

  const libNs = freshNamespaces(env, "lib");
  const libPull = await measure(
    "pull+unpack 50 MB (faasd image pull)",
    libNs.timed(async (ns) => {
      const r = await env.images.pull(env.ref, { namespace: ns });
      if (r.downloadedBytes !== layerBytes) {
        throw new Error(`pull downloaded ${r.downloadedBytes} layer bytes, expected ${layerBytes}`);
      }
    }),
    { ...opts, baseline: CTR_PULL, ...libNs.hooks },
  );

  const cliNs = freshNamespaces(env, "cli");
  const cliPull = await measure(
    "pull+unpack 50 MB (faasd CLI process)",
    cliNs.timed(async (ns) => {
      await faasdCli(env, ["image", "pull", env.ref, "--namespace", ns]);
    }),
    { ...opts, baseline: CTR_PULL, ...cliNs.hooks },
  );

  return [ctrPull, ctrDebugPull, libPull, cliPull];
}

/**
 * A fresh namespace per iteration, through untimed hooks. Before: create the namespace and
 * mark the registry's access log. After: check that every layer was downloaded from the
 * registry and the image is unpacked, purge the namespace (synchronous GC), and check that no
 * namespace and no file on disk still has the image's blobs.
 */
function freshNamespaces(env: Env, tag: string) {
  let ns: string | undefined;
  let mark = 0;
  let succeeded = false;
  return {
    /** Wraps the timed work: it gets the iteration's namespace; success is noted for `after`. */
    timed(fn: (ns: string) => Promise<void>): () => Promise<void> {
      return async () => {
        if (!ns) throw new Error("no namespace: the before hook did not run");
        await fn(ns);
        succeeded = true;
      };
    },
    hooks: {
      before: async () => {
        ns = `${NS_PREFIX}${tag}-${randomBytes(4).toString("hex")}`;
        succeeded = false;
        await env.client.namespaces.create(ns);
        env.live.add(ns);
        mark = await env.registry.mark();
      },
      after: async () => {
        if (!ns) return;
        const done = ns;
        ns = undefined;
        // When the timed work failed, its own error is the one to see: check nothing.
        let checked: Error | undefined;
        if (succeeded) {
          try {
            await assertDownloadedAndUnpacked(env, done, mark);
          } catch (err) {
            checked = err as Error;
          }
        }
        const failures = await purgeNamespace(env.client, done);
        if (failures.length > 0) {
          throw new Error(`purge of namespace "${done}" failed: ${failures.join("; ")}`);
        }
        env.live.delete(done);
        await assertBlobsGone(env);
        if (checked) throw checked;
      },
    },
  };
}

async function assertDownloadedAndUnpacked(env: Env, ns: string, mark: number): Promise<void> {
  const fetched = new Set(
    blobDownloads(await env.registry.requests(mark))
      .filter((r) => r.status === 200)
      .map((r) => r.path.slice(r.path.lastIndexOf("/") + 1)),
  );
  const missing = env.image.layers.filter((l) => !fetched.has(l.digest));
  if (missing.length > 0) {
    throw new Error(
      `the pull in "${ns}" did not download ${missing.map((l) => l.digest).join(", ")}`,
    );
  }
  const diffIds = env.image.layers.map((l) => l.diffId);
  if (!await isUnpacked(env.client.snapshots, ns, diffIds)) {
    const record = await env.client.images.get(ns, env.ref).then(
      (i) => `points at ${i.target.digest}`,
      (err) => `is missing (${err.message})`,
    );
    const blobs = (await env.client.content.list(ns)).length;
    const snapshots = (await env.client.snapshots.list(ns)).length;
    throw new Error(
      `the image in "${ns}" is not unpacked: no snapshot ${
        chainIds(diffIds).at(-1)
      }; its image record ${record}; the namespace holds ${blobs} blobs and ${snapshots} snapshots`,
    );
  }
}

/**
 * containerd shares blobs across namespaces: a blob another namespace holds is committed
 * without downloading. Checks every namespace's metadata and the content store's files.
 */
async function assertBlobsGone(env: Env): Promise<void> {
  const digests = [env.image.manifest, env.image.config, ...env.image.layers].map((b) => b.digest);
  for (const { name } of await env.client.namespaces.list()) {
    for (const digest of digests) {
      const found = await env.client.content.info(name, digest).then(() => true, (err) => {
        if (err instanceof NotFoundError) return false;
        throw err;
      });
      if (found) throw new Error(`blob ${digest} is still in namespace "${name}"`);
    }
  }
  for (const digest of digests) {
    const [alg, hex] = digest.split(":");
    const path = join(CONTENT_BLOBS, alg, hex);
    const exists = await access(path).then(() => true, () => false);
    if (exists) throw new Error(`blob ${digest} is still in containerd's content store (${path})`);
  }
}

async function rePullFigures(env: Env, ctx: ScenarioContext): Promise<Figure[]> {
  const n = ctx.iterations(20);
  const opts = { iterations: n, warmup: warmupFor(n) };
  const ns = `${NS_PREFIX}present-${randomBytes(4).toString("hex")}`;
  await env.client.namespaces.create(ns);
  env.live.add(ns);
  const setupMark = await env.registry.mark();
  await env.images.pull(env.ref, { namespace: ns });
  await assertDownloadedAndUnpacked(env, ns, setupMark);
  ctx.log(`re-pull of the present image × ${n} per client in ${ns}`);
  const mark = await env.registry.mark();

  const ctrRepull = await measure(CTR_REPULL, async () => {
    await ctr(["-n", ns, "images", "pull", "--plain-http", env.ref]);
  }, opts);

  const ctrDebugRepull = await measure(
    "re-pull present image (ctr --debug: no progress display)",
    async () => {
      await ctr(["--debug", "-n", ns, "images", "pull", "--plain-http", env.ref]);
    },
    { ...opts, baseline: CTR_REPULL },
  );

  const libRepull = await measure("re-pull present image (faasd)", async () => {
    const r = await env.images.pull(env.ref, { namespace: ns });
    if (r.downloadedBytes !== 0) throw new Error(`re-pull downloaded ${r.downloadedBytes} bytes`);
  }, { ...opts, baseline: CTR_REPULL });

  const cliRepull = await measure("re-pull present image (faasd CLI process)", async () => {
    await faasdCli(env, ["image", "pull", env.ref, "--namespace", ns]);
  }, { ...opts, baseline: CTR_REPULL });

  const downloads = blobDownloads(await env.registry.requests(mark));
  if (downloads.length > 0) {
    throw new Error(`re-pulls fetched ${downloads.length} blobs from the registry`);
  }

  const ensureMark = await env.registry.mark();
  const ensure = await measure("ensure IfNotPresent (faasd)", async () => {
    const r = await env.images.ensure(env.ref, { namespace: ns, policy: "IfNotPresent" });
    if (r.pulled) throw new Error("ensure pulled an image that was present");
  }, { ...opts, baseline: CTR_REPULL });
  const contacts = await env.registry.requests(ensureMark);
  if (contacts.length > 0) {
    throw new Error(`ensure IfNotPresent sent ${contacts.length} requests to the registry`);
  }
  return [ctrRepull, ctrDebugRepull, libRepull, cliRepull, ensure];
}

/** Runs `faasd` from source as a child process, as a user would run the CLI. */
async function faasdCli(env: Env, args: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "main.ts",
      ...args,
      "--data-dir",
      env.dataDir,
      "--containerd-socket",
      env.socket,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const dec = new TextDecoder();
    throw new Error(
      `faasd ${args.join(" ")} exited with ${out.code}: ${dec.decode(out.stderr).trim()}`,
    );
  }
}

/** Runs ctr and returns its stdout. */
async function ctr(args: string[]): Promise<string> {
  const out = await new Deno.Command("ctr", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`ctr ${args.join(" ")} exited with ${out.code}: ${stderr}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function registryVersion(): Promise<string> {
  const out = await new Deno.Command(REGISTRY_BINARY, { args: ["--version"], stdout: "piped" })
    .output().catch(() => undefined);
  const text = out?.success ? new TextDecoder().decode(out.stdout).trim() : "";
  return text ? text.split(/\s+/).slice(1, 3).join(" ") : "docker-registry";
}

// A quarter of the timed count, at least one: the first pull pays for the registry's cold page
// cache, ctr's and Deno's start-up caches and V8's compilation of the pull path.
function warmupFor(n: number): number {
  return Math.min(50, Math.max(1, Math.round(n / 4)));
}
