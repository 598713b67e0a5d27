import assert from "node:assert/strict";
import { FailedPreconditionError, InvalidArgumentError } from "../../../src/errors.ts";
import {
  containerId,
  CREATED_AT_ANNOTATION,
  decodeRecord,
  DEPLOYMENT_ANNOTATION,
  encodeRecord,
  FUNCTION_LABEL,
  GENERATION_LABEL,
  MAX_GENERATION,
  MAX_REPLICA,
  parseContainerId,
  REPLICA_LABEL,
  toFunctionStatus,
} from "../../../src/provider/function_record.ts";
import type { FunctionStatus } from "../../../src/provider/types.ts";
import { validateDeployment } from "../../../src/provider/validate.ts";

const CONTAINERD_ID = /^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$/;
const createdAt = new Date("2026-01-02T15:04:05.123Z");
const runtime = { createdAt, replicas: 1, availableReplicas: 1, invocationCount: 7 };

/** Deploys `body` through validation, stores it, reads it back and reports its status. */
function roundTrip(body: Record<string, unknown>): FunctionStatus {
  const dep = validateDeployment(body, { defaultNamespace: "openfaas-fn" });
  const { labels, annotations } = encodeRecord(dep, { generation: 3, createdAt, replica: 0 });
  // What containerd hands back: labels as a map, the spec as JSON bytes.
  const stored = JSON.parse(JSON.stringify({ labels, annotations }));
  const rec = decodeRecord(stored.labels, stored.annotations);
  return toFunctionStatus(rec.deployment, { ...runtime, createdAt: rec.createdAt });
}

Deno.test("a deployment round-trips through its containerd record into FunctionStatus", async (t) => {
  const image = "ghcr.io/openfaas/figlet:latest";
  const cases: Array<{ name: string; body: Record<string, unknown>; want: FunctionStatus }> = [
    {
      name: "a minimal deployment has only faas_function as labels and no empty maps",
      body: { service: "figlet", image, envVars: {}, requests: {}, limits: null, labels: null },
      want: {
        name: "figlet",
        image,
        namespace: "openfaas-fn",
        labels: { faas_function: "figlet" },
        readOnlyRootFilesystem: false,
        invocationCount: 7,
        replicas: 1,
        availableReplicas: 1,
        createdAt: "2026-01-02T15:04:05.123Z",
      },
    },
    {
      name: "env values with = come back whole and limits keep their notation",
      body: {
        service: "env-fn",
        image: "localhost:5000/env-fn@sha256:" + "a".repeat(64),
        namespace: "staging",
        envProcess: "env",
        envVars: { DSN: "a=b=c", EMPTY: "", EQ: "=" },
        limits: { memory: "5Mi", cpu: "100m" },
        labels: { "com.openfaas.scale.zero": "true" },
        annotations: { topic: "cron-function" },
        secrets: ["api-key"],
        constraints: ["x == y"],
        readOnlyRootFilesystem: true,
      },
      want: {
        name: "env-fn",
        image: "localhost:5000/env-fn@sha256:" + "a".repeat(64),
        namespace: "staging",
        envProcess: "env",
        envVars: { DSN: "a=b=c", EMPTY: "", EQ: "=" },
        constraints: ["x == y"],
        secrets: ["api-key"],
        labels: { "com.openfaas.scale.zero": "true", faas_function: "env-fn" },
        annotations: { topic: "cron-function" },
        limits: { memory: "5Mi", cpu: "100m" },
        readOnlyRootFilesystem: true,
        invocationCount: 7,
        replicas: 1,
        availableReplicas: 1,
        createdAt: "2026-01-02T15:04:05.123Z",
      },
    },
    {
      name: "requests keep their notation and a memory-only limit has no cpu",
      body: { service: "r", image: "r", limits: { memory: "1e6" }, requests: { cpu: "0.5" } },
      want: {
        name: "r",
        image: "r",
        namespace: "openfaas-fn",
        labels: { faas_function: "r" },
        limits: { memory: "1e6" },
        requests: { cpu: "0.5" },
        readOnlyRootFilesystem: false,
        invocationCount: 7,
        replicas: 1,
        availableReplicas: 1,
        createdAt: "2026-01-02T15:04:05.123Z",
      },
    },
    {
      name: "a faas_function label sent by the user is replaced by the real name",
      body: { service: "real", image: "i", labels: { faas_function: "other" } },
      want: {
        name: "real",
        image: "i",
        namespace: "openfaas-fn",
        labels: { faas_function: "real" },
        readOnlyRootFilesystem: false,
        invocationCount: 7,
        replicas: 1,
        availableReplicas: 1,
        createdAt: "2026-01-02T15:04:05.123Z",
      },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const got = roundTrip(c.body);
      assert.deepEqual(got, c.want);
      // The wire form: never `{}` for envVars or requests.
      const wire = JSON.stringify(got);
      assert.doesNotMatch(wire, /"(envVars|requests|limits|annotations)":\{\}/);
    });
  }

  await t.step("200 env vars, beyond one label's 4096 bytes, still round-trip", () => {
    const envVars = Object.fromEntries(
      Array.from({ length: 200 }, (_, i) => [`VAR_${i}`, `value=${i}=${"x".repeat(20)}`]),
    );
    const dep = validateDeployment({ service: "big", image: "i", envVars }, {
      defaultNamespace: "openfaas-fn",
    });
    const { labels, annotations } = encodeRecord(dep, { generation: 1, createdAt, replica: 0 });
    assert.ok(annotations[DEPLOYMENT_ANNOTATION].length > 4096);
    for (const [k, v] of Object.entries(labels)) assert.ok(k.length + v.length <= 4096, k);
    assert.deepEqual(roundTrip({ service: "big", image: "i", envVars }).envVars, envVars);
  });
});

Deno.test("encodeRecord() keeps labels small and filterable and the deployment in annotations", () => {
  const dep = validateDeployment({ service: "figlet", image: "figlet", labels: { a: "b" } }, {
    defaultNamespace: "openfaas-fn",
  });
  const { labels, annotations } = encodeRecord(dep, { generation: 12, createdAt, replica: 2 });
  assert.deepEqual(labels, {
    [FUNCTION_LABEL]: "figlet",
    [GENERATION_LABEL]: "12",
    [REPLICA_LABEL]: "2",
  });
  assert.deepEqual(JSON.parse(annotations[DEPLOYMENT_ANNOTATION]), dep);
  assert.equal(annotations[CREATED_AT_ANNOTATION], "2026-01-02T15:04:05.123Z");
  assert.deepEqual(decodeRecord(labels, annotations), {
    deployment: dep,
    generation: 12,
    createdAt,
    replica: 2,
  });
});

Deno.test("encodeRecord() refuses counters a container ID cannot hold", async (t) => {
  const dep = { service: "f", image: "i" };
  const cases = [
    { name: "a negative generation", generation: -1, replica: 0 },
    { name: "a fractional replica", generation: 0, replica: 0.5 },
    { name: "a generation above MAX_GENERATION", generation: MAX_GENERATION + 1, replica: 0 },
    { name: "a replica above MAX_REPLICA", generation: 0, replica: MAX_REPLICA + 1 },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(
        () => encodeRecord(dep, { generation: c.generation, createdAt, replica: c.replica }),
        InvalidArgumentError,
      );
    });
  }
});

Deno.test("decodeRecord() says what is wrong with a damaged or foreign record", async (t) => {
  const dep = { service: "f", image: "i", namespace: "openfaas-fn" };
  const good = encodeRecord(dep, { generation: 1, createdAt, replica: 0 });
  const cases: Array<{
    name: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    message: RegExp;
  }> = [
    {
      name: "a container without the function label",
      labels: {},
      annotations: good.annotations,
      message: /label "com\.openfaas\.function" is missing/,
    },
    {
      name: "a generation that is not a number",
      labels: { ...good.labels, [GENERATION_LABEL]: "x" },
      annotations: good.annotations,
      message: /label "io\.faasd-ts\.generation" is "x", not a number/,
    },
    {
      name: "a missing replica label",
      labels: { [FUNCTION_LABEL]: "f", [GENERATION_LABEL]: "1" },
      annotations: good.annotations,
      message: /label "io\.faasd-ts\.replica" is missing/,
    },
    {
      name: "a spec without annotations",
      labels: good.labels,
      message: /spec annotation "io\.faasd-ts\.deployment\.v1" is missing/,
    },
    {
      name: "a deployment that is not JSON",
      labels: good.labels,
      annotations: { ...good.annotations, [DEPLOYMENT_ANNOTATION]: "{" },
      message: /is not JSON/,
    },
    {
      name: "a deployment without an image",
      labels: good.labels,
      annotations: { ...good.annotations, [DEPLOYMENT_ANNOTATION]: '{"service":"f"}' },
      message: /has no service and image/,
    },
    {
      name: "a label and deployment naming different functions",
      labels: { ...good.labels, [FUNCTION_LABEL]: "g" },
      annotations: good.annotations,
      message: /label "com\.openfaas\.function" is "g" but the deployment is "f"/,
    },
    {
      name: "a createdAt that is not RFC 3339",
      labels: good.labels,
      annotations: { ...good.annotations, [CREATED_AT_ANNOTATION]: "yesterday" },
      message: /"io\.faasd-ts\.created-at" "yesterday" is not an RFC 3339 time/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(() => decodeRecord(c.labels, c.annotations), (err: Error) => {
        assert.ok(err instanceof FailedPreconditionError, `${err.name}: ${err.message}`);
        assert.match(err.message, c.message);
        return true;
      });
    });
  }
});

Deno.test("toFunctionStatus() reports usage only when given", () => {
  const dep = { service: "f", image: "i", namespace: "ns" };
  assert.equal("usage" in toFunctionStatus(dep, runtime), false);
  const usage = { cpu: 0.25, totalMemoryBytes: 1 << 20 };
  assert.deepEqual(toFunctionStatus(dep, { ...runtime, usage }).usage, usage);
});

Deno.test("containerId() is a valid containerd ID that parseContainerId() inverts", async (t) => {
  const longest = "a" + "-b".repeat(31); // 63 characters, the most hyphens a legal name has
  const cases = [
    { name: "figlet", generation: 0, replica: 0, id: "figlet-0-0" },
    { name: "nodeinfo", generation: 35, replica: 36, id: "nodeinfo-z-10" },
    { name: "a-1-2", generation: 1, replica: 2, id: "a-1-2-1-2" },
    { name: "x".repeat(63), generation: MAX_GENERATION, replica: MAX_REPLICA },
    { name: longest, generation: MAX_GENERATION, replica: MAX_REPLICA },
  ];
  for (const c of cases) {
    await t.step(`${c.name.length}-character name, generation ${c.generation}`, () => {
      const id = containerId(c.name, c.generation, c.replica);
      if (c.id) assert.equal(id, c.id);
      assert.match(id, CONTAINERD_ID);
      assert.ok(id.length <= 76, `${id.length} characters`);
      assert.deepEqual(parseContainerId(id), {
        name: c.name,
        generation: c.generation,
        replica: c.replica,
      });
    });
  }
  await t.step("the longest name at the highest counters is exactly 76 characters", () => {
    assert.equal(containerId("x".repeat(63), MAX_GENERATION, MAX_REPLICA).length, 76);
  });
  await t.step("a name containerd would reject is refused", () => {
    assert.throws(() => containerId("a--b", 0, 0), InvalidArgumentError);
    assert.throws(() => containerId("x".repeat(64), 0, 0), InvalidArgumentError);
  });
});

Deno.test("parseContainerId() ignores IDs containerId() did not make", async (t) => {
  const cases = [
    "gateway",
    "figlet",
    "figlet-1",
    "Figlet-1-0",
    "figlet-01-0",
    "figlet-1-00",
    "figlet-1-1000",
    "figlet-123456789-0",
    "a--b-1-0",
    "x".repeat(64) + "-0-0",
  ];
  for (const id of cases) {
    await t.step(id, () => assert.equal(parseContainerId(id), undefined));
  }
});
