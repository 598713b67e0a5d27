import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCache } from "../../../src/cni/cache.ts";
import type { Container } from "../../../src/containerd/containers.ts";
import type { TaskProcess } from "../../../src/containerd/tasks.ts";
import { NotFoundError } from "../../../src/errors.ts";
import type { ServiceSpec } from "../../../src/supervisor/compose.ts";
import { listServices, renderServiceTable } from "../../../src/supervisor/status.ts";

const spec = (name: string): ServiceSpec => ({
  name,
  image: `img/${name}`,
  environment: {},
  dependsOn: [],
  ports: [],
  volumes: [],
  capAdd: [],
  restart: "always",
});
const container = (id: string, labels: Record<string, string>) =>
  ({
    id,
    image: `docker.io/img/${id}:latest`,
    labels: { "io.faasd-ts.service": id, "io.faasd-ts.service.image": `img/${id}`, ...labels },
  }) as unknown as Container;

Deno.test("listServices() reads state from containerd and the CNI cache", async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), "svc-status-"));
  try {
    await writeCache(cacheDir, {
      containerId: "openfaas.db",
      netns: "/proc/7/ns/net",
      ifName: "eth0",
      config: { cniVersion: "1.0.0", name: "faasd-ts", plugins: [] },
      result: { cniVersion: "1.0.0", ips: [{ address: "10.62.0.5/16", gateway: "10.62.0.1" }] },
    });
    const tasks: TaskProcess[] = [
      { id: "db", pid: 7, status: "RUNNING", exitStatus: 0 },
      { id: "job", pid: 0, status: "STOPPED", exitStatus: 2 },
    ];
    const rows = await listServices({
      containers: {
        list: () =>
          Promise.resolve([
            container("db", { "io.faasd-ts.service.restarts": "3" }),
            container("job", {}),
            container("web", {}),
            container("old", { "io.faasd-ts.service.exit": "1" }),
          ]),
      },
      tasks: { list: () => Promise.resolve(tasks) },
    }, {
      namespace: "openfaas",
      cacheDir,
      configured: [spec("db"), spec("job"), spec("web"), spec("cache")],
    });
    assert.deepEqual(rows, [
      { name: "db", image: "img/db", status: "running", pid: 7, ip: "10.62.0.5", restarts: 3 },
      {
        name: "job",
        image: "img/job",
        status: "exited (2)",
        pid: undefined,
        ip: undefined,
        restarts: 0,
      },
      {
        name: "web",
        image: "img/web",
        status: "restarting",
        pid: undefined,
        ip: undefined,
        restarts: 0,
      },
      { name: "cache", image: "img/cache", status: "stopped", restarts: 0 },
      {
        name: "old",
        image: "img/old",
        status: "exited (1)",
        pid: undefined,
        ip: undefined,
        restarts: 0,
      },
    ]);
    assert.equal(
      renderServiceTable(rows.slice(0, 2)),
      "NAME  IMAGE    STATUS      PID  IP         RESTARTS\n" +
        "db    img/db   running     7    10.62.0.5  3\n" +
        "job   img/job  exited (2)  -    -          0\n",
    );
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});

Deno.test("listServices() of a namespace containerd does not have lists the configured services as stopped", async () => {
  const missing = () => Promise.reject(new NotFoundError("namespace not found"));
  const rows = await listServices({ containers: { list: missing }, tasks: { list: missing } }, {
    namespace: "nope",
    cacheDir: "/nonexistent",
    configured: [spec("db")],
  });
  assert.deepEqual(rows, [{ name: "db", image: "img/db", status: "stopped", restarts: 0 }]);
});
