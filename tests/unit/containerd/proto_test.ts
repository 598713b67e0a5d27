import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import {
  OUTPUT_FILE,
  PROTO_DIR,
  readProtoFiles,
  renderProtoModule,
} from "../../../scripts/gen_proto.ts";
import { decodeAny, loadProtoApi } from "../../../src/containerd/proto.ts";

Deno.test("proto_text.ts embeds exactly the files in proto/ (run `deno task gen:proto`)", async () => {
  const expected = renderProtoModule(await readProtoFiles(PROTO_DIR));
  assert.equal(await readFile(OUTPUT_FILE, "utf8"), expected);
});

Deno.test("the embedded API has every RPC the client calls", async (t) => {
  const api = loadProtoApi();
  const wanted: Record<string, string[]> = {
    "containerd.services.version.v1.Version": ["Version"],
    "containerd.services.namespaces.v1.Namespaces": ["Get", "List", "Create", "Update", "Delete"],
    "containerd.services.containers.v1.Containers": ["Get", "List", "Create", "Update", "Delete"],
    "containerd.services.tasks.v1.Tasks": [
      "Create",
      "Start",
      "Delete",
      "Get",
      "List",
      "Kill",
      "Pause",
      "Resume",
      "Metrics",
      "Wait",
    ],
    "containerd.services.snapshots.v1.Snapshots": [
      "Prepare",
      "View",
      "Mounts",
      "Commit",
      "Remove",
      "Stat",
      "Update",
      "List",
      "Usage",
    ],
    "containerd.services.content.v1.Content": [
      "Info",
      "Update",
      "List",
      "Delete",
      "Read",
      "Write",
      "Abort",
    ],
    "containerd.services.images.v1.Images": ["Get", "List", "Create", "Update", "Delete"],
    "containerd.services.diff.v1.Diff": ["Apply", "Diff"],
    "containerd.services.leases.v1.Leases": [
      "Create",
      "Delete",
      "List",
      "AddResource",
      "DeleteResource",
      "ListResources",
    ],
    "containerd.services.events.v1.Events": ["Subscribe"],
  };
  for (const [service, methods] of Object.entries(wanted)) {
    await t.step(service, () => {
      for (const m of methods) assert.equal(api.method(service, m)?.path, `/${service}/${m}`);
      assert.equal(api.method(service, "NoSuchMethod"), undefined);
    });
  }
});

Deno.test("decodeAny() decodes a TaskExit event by its containerd type URL", () => {
  const api = loadProtoApi();
  const value = api.encode("containerd.events.TaskExit", {
    container_id: "fn-1",
    id: "fn-1",
    pid: 42,
    exit_status: 137,
  });
  const decoded = decodeAny(api, { type_url: "containerd.events.TaskExit", value });
  assert.equal(decoded?.value.container_id, "fn-1");
  assert.equal(decoded?.value.exit_status, 137);
  assert.equal(decodeAny(api, { type_url: "example.Unknown", value }), undefined);
});

Deno.test("field numbers match containerd's published API for the messages we rely on", async (t) => {
  const api = loadProtoApi();
  const cases: Array<[string, Record<string, number>]> = [
    ["containerd.types.Descriptor", { media_type: 1, digest: 2, size: 3, annotations: 5 }],
    ["containerd.services.tasks.v1.CreateTaskRequest", {
      container_id: 1,
      rootfs: 3,
      stdin: 4,
      stdout: 5,
      stderr: 6,
      terminal: 7,
    }],
    ["containerd.services.content.v1.WriteContentRequest", {
      action: 1,
      ref: 2,
      total: 3,
      expected: 4,
      offset: 5,
      data: 6,
      labels: 7,
    }],
    ["containerd.services.images.v1.Image", { name: 1, labels: 2, target: 3, created_at: 7 }],
    ["containerd.events.TaskExit", {
      container_id: 1,
      id: 2,
      pid: 3,
      exit_status: 4,
      exited_at: 5,
    }],
  ];
  for (const [name, fields] of cases) {
    await t.step(name, () => {
      const type = api.schema.message(name);
      for (const [field, id] of Object.entries(fields)) {
        assert.equal(type.fields.find((f) => f.name === field)?.number, id, field);
      }
    });
  }
});
