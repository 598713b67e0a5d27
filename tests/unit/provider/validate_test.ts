import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import type { FunctionDeployment } from "../../../src/provider/types.ts";
import { validateDeployment, validateName } from "../../../src/provider/validate.ts";

const opts = { defaultNamespace: "openfaas-fn" };
const base = { service: "figlet", image: "ghcr.io/openfaas/figlet:latest" };

Deno.test("validateDeployment() normalises a valid request", async (t) => {
  const cases: Array<{ name: string; body: Record<string, unknown>; want: FunctionDeployment }> = [
    {
      name: "the namespace defaults and readOnlyRootFilesystem becomes false",
      body: base,
      want: { ...base, namespace: "openfaas-fn", readOnlyRootFilesystem: false },
    },
    {
      name: "the body's namespace wins over the default",
      body: { ...base, namespace: "staging" },
      want: { ...base, namespace: "staging", readOnlyRootFilesystem: false },
    },
    {
      name: "null and empty maps, lists and strings are left out",
      body: {
        ...base,
        namespace: "",
        envProcess: "",
        envVars: null,
        constraints: [],
        secrets: null,
        labels: {},
        annotations: null,
        limits: { memory: "", cpu: null },
        requests: null,
        readOnlyRootFilesystem: null,
      },
      want: { ...base, namespace: "openfaas-fn", readOnlyRootFilesystem: false },
    },
    {
      name: "every field is kept as sent, quantities in their own notation",
      body: {
        ...base,
        envProcess: "figlet -f slant",
        envVars: { DSN: "postgres://u:p@db/x?sslmode=disable&a=b", write_debug: "true" },
        constraints: ["node.platform.os == linux"],
        secrets: ["api-key", "db.password"],
        labels: { "com.openfaas.scale.min": "2", team: "a=b" },
        annotations: { topic: "cron-function", schedule: "*/5 * * * *" },
        limits: { memory: "5Mi", cpu: "100m" },
        requests: { memory: "1e6", cpu: "0.05" },
        readOnlyRootFilesystem: true,
      },
      want: {
        ...base,
        namespace: "openfaas-fn",
        envProcess: "figlet -f slant",
        envVars: { DSN: "postgres://u:p@db/x?sslmode=disable&a=b", write_debug: "true" },
        constraints: ["node.platform.os == linux"],
        secrets: ["api-key", "db.password"],
        labels: { "com.openfaas.scale.min": "2", team: "a=b" },
        annotations: { topic: "cron-function", schedule: "*/5 * * * *" },
        limits: { memory: "5Mi", cpu: "100m" },
        requests: { memory: "1e6", cpu: "0.05" },
        readOnlyRootFilesystem: true,
      },
    },
    {
      name: "fields outside the contract (a registry credential) are dropped",
      body: { ...base, registryAuth: "dXNlcjpwYXNz", network: "func_functions" },
      want: { ...base, namespace: "openfaas-fn", readOnlyRootFilesystem: false },
    },
    {
      name: "a 63-character name is allowed",
      body: { ...base, service: "a".repeat(63) },
      want: {
        ...base,
        service: "a".repeat(63),
        namespace: "openfaas-fn",
        readOnlyRootFilesystem: false,
      },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(validateDeployment(c.body, opts), c.want));
  }
});

Deno.test("validateDeployment() rejects each bad field with a message naming it", async (t) => {
  const cases: Array<
    { name: string; body: unknown; message: string | RegExp; defaultNamespace?: string }
  > = [
    { name: "a body that is not an object", body: [], message: /must be a JSON object/ },
    {
      name: "a missing name",
      body: { image: "x" },
      message: 'invalid function name "": it is empty',
    },
    {
      name: "an upper-case name",
      body: { ...base, service: "Foo" },
      message: /^invalid function name "Foo": use lowercase/,
    },
    {
      name: "a name with an underscore",
      body: { ...base, service: "my_fn" },
      message: /^invalid function name "my_fn"/,
    },
    {
      name: "a name ending in a hyphen",
      body: { ...base, service: "fn-" },
      message: /^invalid function name "fn-"/,
    },
    {
      name: "a name with consecutive hyphens",
      body: { ...base, service: "a--b" },
      message: /^invalid function name "a--b": consecutive "-"/,
    },
    {
      name: "a 64-character name",
      body: { ...base, service: "a".repeat(64) },
      message: /longer than 63 characters/,
    },
    {
      name: "a name that is a number",
      body: { ...base, service: 42 },
      message: "invalid function name 42: it must be a string",
    },
    {
      name: "a missing image",
      body: { service: "fn" },
      message: 'invalid image "" for function "fn": it is empty',
    },
    { name: "a blank image", body: { ...base, image: "  " }, message: /^invalid image " {2}"/ },
    {
      name: "a bad namespace",
      body: { ...base, namespace: "Prod" },
      message: /^invalid namespace "Prod"/,
    },
    {
      name: "a bad default namespace",
      body: base,
      defaultNamespace: "a.b",
      message: /^invalid namespace "a\.b"/,
    },
    {
      name: "an env name starting with a digit",
      body: { ...base, envVars: { "1BAD": "x" } },
      message: /^envVars name "1BAD" is not a valid variable name/,
    },
    {
      name: "an env name with a hyphen",
      body: { ...base, envVars: { "MY-VAR": "x" } },
      message: /^envVars name "MY-VAR"/,
    },
    {
      name: "an env value that is a number",
      body: { ...base, envVars: { PORT: 8080 } },
      message: 'envVars "PORT" must be a string, not 8080',
    },
    {
      name: "an env value with a NUL",
      body: { ...base, envVars: { A: "x\0y" } },
      message: /^envVars "A" has a value with a NUL/,
    },
    {
      name: "an env var longer than the kernel allows",
      body: { ...base, envVars: { A: "x".repeat(131070) } },
      message: /^envVars "A" is 131072 bytes/,
    },
    {
      name: "envVars as a list",
      body: { ...base, envVars: ["A=1"] },
      message: "envVars must be an object of strings",
    },
    {
      name: "an empty label key",
      body: { ...base, labels: { "": "x" } },
      message: /^labels key "" is not valid/,
    },
    {
      name: "a label key with =",
      body: { ...base, labels: { "a=b": "x" } },
      message: /^labels key "a=b" is not valid/,
    },
    {
      name: "a label key that is too long",
      body: { ...base, labels: { ["k".repeat(318)]: "x" } },
      message: /^labels key "k+" is not valid: it must be 1 to 317/,
    },
    {
      name: "an annotation key with a space",
      body: { ...base, annotations: { "a b": "x" } },
      message: /^annotations key "a b" is not valid/,
    },
    {
      name: "a label value that is not a string",
      body: { ...base, labels: { a: true } },
      message: 'labels "a" must be a string, not true',
    },
    {
      name: "a memory limit in an unknown unit",
      body: { ...base, limits: { memory: "12Q" } },
      message: 'limits.memory "12Q" is not a valid quantity',
    },
    {
      name: "a negative memory limit",
      body: { ...base, limits: { memory: "-5Mi" } },
      message: 'limits.memory "-5Mi" must not be negative',
    },
    {
      name: "a zero memory limit",
      body: { ...base, limits: { memory: "0" } },
      message: 'limits.memory "0" must be greater than zero',
    },
    {
      name: "a cpu limit that is garbage",
      body: { ...base, limits: { cpu: "fast" } },
      message: 'limits.cpu "fast" is not a valid quantity',
    },
    {
      name: "a cpu limit below the kernel's minimum quota",
      body: { ...base, limits: { cpu: "5m" } },
      message: `limits.cpu "5m" is below the kernel's minimum of 10m`,
    },
    {
      name: "a memory request that is garbage",
      body: { ...base, requests: { memory: "lots" } },
      message: 'requests.memory "lots" is not a valid quantity',
    },
    {
      name: "a cpu request that is a number",
      body: { ...base, requests: { cpu: 1 } },
      message: "requests.cpu must be a string, not 1",
    },
    {
      name: "limits as a string",
      body: { ...base, limits: "1Gi" },
      message: "limits must be an object",
    },
    {
      name: "an empty secret name",
      body: { ...base, secrets: [""] },
      message: /^secrets\[0\] "" is not a valid secret name/,
    },
    {
      name: "a secret name with a slash",
      body: { ...base, secrets: ["ok", "../etc/passwd"] },
      message: /^secrets\[1\] "\.\.\/etc\/passwd" is not a valid secret name/,
    },
    {
      name: "a secret named ..",
      body: { ...base, secrets: [".."] },
      message: /^secrets\[0\] "\.\." is not a valid/,
    },
    {
      name: "a secret named .",
      body: { ...base, secrets: ["."] },
      message: /^secrets\[0\] "\." is not a valid/,
    },
    {
      name: "a secret listed twice",
      body: { ...base, secrets: ["a", "a"] },
      message: 'secrets[1] "a" is listed twice',
    },
    {
      name: "a secret that is not a string",
      body: { ...base, secrets: [1] },
      message: "secrets[0] must be a string, not 1",
    },
    {
      name: "constraints as a string",
      body: { ...base, constraints: "x" },
      message: "constraints must be a list of strings",
    },
    {
      name: "readOnlyRootFilesystem as a string",
      body: { ...base, readOnlyRootFilesystem: "yes" },
      message: 'readOnlyRootFilesystem must be true or false, not "yes"',
    },
    {
      name: "a deployment over 1 MiB",
      body: {
        ...base,
        annotations: Object.fromEntries(
          Array.from({ length: 20 }, (_, i) => [`k${i}`, "v".repeat(60_000)]),
        ),
      },
      message: /^function deployment "figlet" is \d+ bytes; at most 1048576/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const o = { defaultNamespace: c.defaultNamespace ?? opts.defaultNamespace };
      assert.throws(() => validateDeployment(c.body, o), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError, `${err.name}: ${err.message}`);
        if (typeof c.message === "string") assert.equal(err.message, c.message);
        else assert.match(err.message, c.message);
        return true;
      });
    });
  }
});

Deno.test("validateDeployment() keeps env values with = and 200 entries whole", () => {
  const envVars = Object.fromEntries(
    Array.from({ length: 200 }, (_, i) => [`VAR_${i}`, `k=v;x==${"y".repeat(30)}=`]),
  );
  const dep = validateDeployment({ ...base, envVars }, opts);
  assert.deepEqual(dep.envVars, envVars);
});

Deno.test("validateName() checks namespaces with the same rule", () => {
  assert.equal(validateName("openfaas-fn", "namespace"), "openfaas-fn");
  assert.throws(() => validateName("fn.x", "namespace"), {
    name: "InvalidArgumentError",
    message: /^invalid namespace "fn\.x"/,
  });
});
