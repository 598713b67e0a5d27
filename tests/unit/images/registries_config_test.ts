import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError } from "../../../src/errors.ts";
import {
  endpointsFor,
  hostConfigFor,
  loadRegistriesConfig,
  parseRegistriesConfig,
  type RegistriesConfig,
} from "../../../src/images/registries_config.ts";

const FULL = `# k3s-style registries
mirrors:
  docker.io:
    endpoint: ["http://10.0.0.5:5000", "https://mirror.example.com/v2/"]
  "ghcr.io":
    endpoint:
      - https://ghcr-mirror.example.com/prefix/
configs:
  "10.0.0.5:5000":
    auth: { username: u, password: p }
    tls: { ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/k.pem, insecure_skip_verify: false }
    plain_http: true
  mirror.example.com:
    auth:
      auth: ${Buffer.from("m:pw:x").toString("base64")}
      identity_token: refresh
  registry.local:
    plain_http: true
`;

Deno.test("parseRegistriesConfig() reads mirrors and per-host configs", () => {
  assert.deepEqual(parseRegistriesConfig(FULL), {
    mirrors: {
      "docker.io": { endpoints: ["http://10.0.0.5:5000", "https://mirror.example.com"] },
      "ghcr.io": { endpoints: ["https://ghcr-mirror.example.com/prefix"] },
    },
    configs: {
      "10.0.0.5:5000": {
        auth: { username: "u", password: "p" },
        tls: {
          caFile: "/etc/ca.pem",
          certFile: "/etc/c.pem",
          keyFile: "/etc/k.pem",
          insecureSkipVerify: false,
        },
        plainHttp: true,
      },
      "mirror.example.com": {
        auth: { username: "m", password: "pw:x", identityToken: "refresh" },
      },
      "registry.local": { plainHttp: true },
    },
  });
});

Deno.test("parseRegistriesConfig() accepts empty and partial files", async (t) => {
  const cases = [
    { name: "empty file", text: "", want: { mirrors: {}, configs: {} } },
    { name: "only comments", text: "# nothing\n", want: { mirrors: {}, configs: {} } },
    { name: "empty sections", text: "mirrors:\nconfigs: {}\n", want: { mirrors: {}, configs: {} } },
    {
      name: "Docker Hub spellings become docker.io",
      text:
        "mirrors:\n  index.docker.io:\n    endpoint: []\nconfigs:\n  registry-1.docker.io: {}\n",
      want: { mirrors: { "docker.io": { endpoints: [] } }, configs: { "docker.io": {} } },
    },
    {
      name: "a * entry",
      text: 'mirrors:\n  "*":\n    endpoint: ["https://m.example.com"]\n',
      want: { mirrors: { "*": { endpoints: ["https://m.example.com"] } }, configs: {} },
    },
    {
      name: "aliases resolve",
      text: "configs:\n  a.io: &c\n    plain_http: true\n  b.io: *c\n",
      want: { mirrors: {}, configs: { "a.io": { plainHttp: true }, "b.io": { plainHttp: true } } },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(parseRegistriesConfig(c.text), c.want));
  }
});

Deno.test("parseRegistriesConfig() refuses mistakes with the line and key path", async (t) => {
  const cases = [
    {
      name: "unknown key under a mirror",
      text: "mirrors:\n  docker.io:\n    endpoint: []\n    endpoints: []\n",
      message:
        'registries.yaml line 4: unknown key "endpoints" under mirrors."docker.io" (expected endpoint)',
    },
    {
      name: "unknown top-level key",
      text: "mirror:\n  docker.io: {}\n",
      message:
        'registries.yaml line 1: unknown key "mirror" at the top level (expected mirrors or configs)',
    },
    {
      name: "unknown config key",
      text: 'configs:\n  "10.0.0.5:5000":\n    insecure: true\n',
      message:
        'registries.yaml line 3: unknown key "insecure" under configs."10.0.0.5:5000" (expected auth, tls or plain_http)',
    },
    {
      name: "unknown tls key",
      text: "configs:\n  a.io:\n    tls:\n      ca: /x\n",
      message:
        'registries.yaml line 4: unknown key "ca" under configs."a.io".tls (expected ca_file, cert_file, key_file or insecure_skip_verify)',
    },
    {
      name: "endpoint is a string, not a list",
      text: "mirrors:\n  docker.io:\n    endpoint: https://m.example.com\n",
      message: 'registries.yaml line 3: mirrors."docker.io".endpoint must be a list of URLs',
    },
    {
      name: "endpoint that is not http(s)",
      text:
        'mirrors:\n  docker.io:\n    endpoint:\n      - "https://ok.example.com"\n      - ftp://m\n',
      message:
        'registries.yaml line 5: mirrors."docker.io".endpoint[1] "ftp://m" is not an http(s) URL',
    },
    {
      name: "endpoint without a scheme",
      text: "mirrors:\n  docker.io:\n    endpoint: [m.example.com]\n",
      message:
        'registries.yaml line 3: mirrors."docker.io".endpoint[0] "m.example.com" is not an http(s) URL',
    },
    {
      name: "endpoint with credentials in it",
      text: 'mirrors:\n  docker.io:\n    endpoint: ["https://u:p@m.example.com"]\n',
      message:
        'registries.yaml line 3: mirrors."docker.io".endpoint[0] "https://u:p@m.example.com" is not an http(s) URL',
    },
    {
      name: "plain_http that is not a boolean",
      text: "configs:\n  a.io:\n    plain_http: yes\n",
      message:
        'registries.yaml line 3: configs."a.io".plain_http must be true or false, got string "yes"',
    },
    {
      name: "numeric password",
      text: "configs:\n  a.io:\n    auth:\n      username: u\n      password: 0123\n",
      message:
        'registries.yaml line 5: configs."a.io".auth.password must be a string (quote numbers), got number 123',
    },
    {
      name: "auth that is not base64 user:password",
      text: "configs:\n  a.io:\n    auth: { auth: bm9jb2xvbg== }\n",
      message:
        'registries.yaml line 3: configs."a.io".auth.auth: invalid credentials for registry "a.io": "auth" is not base64 of "user:password"',
    },
    {
      name: "cert without key",
      text: "configs:\n  a.io:\n    tls:\n      cert_file: /c.pem\n",
      message:
        'registries.yaml line 4: configs."a.io".tls needs both cert_file and key_file, or neither',
    },
    {
      name: "mirror key with a scheme",
      text: "mirrors:\n  https://docker.io:\n    endpoint: []\n",
      message:
        'registries.yaml line 2: mirrors key "https://docker.io" must be a registry host such as "docker.io" or "10.0.0.5:5000" (no scheme or path), or "*"',
    },
    {
      name: "the same registry twice under two spellings",
      text: "mirrors:\n  docker.io: {}\n  index.docker.io: {}\n",
      message: 'registries.yaml line 3: mirrors."index.docker.io" repeats registry "docker.io"',
    },
    {
      name: "a section that is a list",
      text: "configs:\n  - a.io\n",
      message: "registries.yaml line 2: configs must be a map",
    },
    {
      name: "a top level that is not a map",
      text: "just text\n",
      message: "registries.yaml line 1: the top level must be a map",
    },
    {
      name: "duplicate keys",
      text: "configs:\n  a.io: {}\n  a.io: {}\n",
      message: "registries.yaml line 3: Map keys must be unique",
    },
    {
      name: "broken YAML",
      text: 'mirrors:\n  docker.io:\n    endpoint: ["x"\n',
      message: /^registries\.yaml line \d: /,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(() => parseRegistriesConfig(c.text), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        if (typeof c.message === "string") assert.equal(err.message, c.message);
        else assert.match(err.message, c.message);
        return true;
      });
    });
  }
});

Deno.test("loadRegistriesConfig() reads <data-dir>/registries.yaml and names it in errors", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "faasd-registries-"));
  try {
    await t.step("a missing file is an empty config", async () => {
      assert.deepEqual(await loadRegistriesConfig(dir), { mirrors: {}, configs: {} });
    });
    await t.step("the file is parsed", async () => {
      await writeFile(join(dir, "registries.yaml"), "configs:\n  a.io:\n    plain_http: true\n");
      assert.deepEqual(await loadRegistriesConfig(dir), {
        mirrors: {},
        configs: { "a.io": { plainHttp: true } },
      });
    });
    await t.step("an error starts with the file's path and line", async () => {
      await writeFile(join(dir, "registries.yaml"), "\nconfig: {}\n");
      await assert.rejects(
        loadRegistriesConfig(dir),
        new RegExp(`^InvalidArgumentError: ${join(dir, "registries.yaml")} line 2: unknown key`),
      );
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("endpointsFor() lists mirrors in order, then the registry itself", async (t) => {
  const config = parseRegistriesConfig(FULL);
  const withStar: RegistriesConfig = parseRegistriesConfig(
    'mirrors:\n  "*":\n    endpoint: ["https://all.example.com"]\n  docker.io:\n    endpoint: ["https://registry-1.docker.io", "https://m.example.com"]\nconfigs:\n  localhost:5000:\n    plain_http: false\n',
  );
  const empty: RegistriesConfig = { mirrors: {}, configs: {} };
  const o = (url: string, host: string) => ({ url, host, mirror: false });
  const m = (url: string, host: string) => ({ url, host, mirror: true });
  const cases = [
    {
      name: "Docker Hub with two mirrors",
      config,
      domain: "docker.io",
      want: [
        m("http://10.0.0.5:5000", "10.0.0.5:5000"),
        m("https://mirror.example.com", "mirror.example.com"),
        o("https://registry-1.docker.io", "docker.io"),
      ],
    },
    {
      name: "a mirror with a path prefix",
      config,
      domain: "ghcr.io",
      want: [
        m("https://ghcr-mirror.example.com/prefix", "ghcr-mirror.example.com"),
        o("https://ghcr.io", "ghcr.io"),
      ],
    },
    {
      name: "no mirrors",
      config: empty,
      domain: "quay.io",
      want: [o("https://quay.io", "quay.io")],
    },
    {
      name: "Docker Hub without config",
      config: empty,
      domain: "docker.io",
      want: [o("https://registry-1.docker.io", "docker.io")],
    },
    {
      name: "plain_http: true in configs",
      config,
      domain: "registry.local",
      want: [o("http://registry.local", "registry.local")],
    },
    {
      name: "a plain_http mirror host as origin",
      config,
      domain: "10.0.0.5:5000",
      want: [o("http://10.0.0.5:5000", "10.0.0.5:5000")],
    },
    {
      name: "localhost",
      config: empty,
      domain: "localhost",
      want: [o("http://localhost", "localhost")],
    },
    {
      name: "localhost with a port",
      config: empty,
      domain: "localhost:5000",
      want: [o("http://localhost:5000", "localhost:5000")],
    },
    {
      name: "127.0.0.0/8",
      config: empty,
      domain: "127.1.2.3:5000",
      want: [o("http://127.1.2.3:5000", "127.1.2.3:5000")],
    },
    {
      name: "[::1]",
      config: empty,
      domain: "[::1]:5000",
      want: [o("http://[::1]:5000", "[::1]:5000")],
    },
    {
      name: "not loopback: 128.0.0.1",
      config: empty,
      domain: "128.0.0.1:5000",
      want: [o("https://128.0.0.1:5000", "128.0.0.1:5000")],
    },
    {
      name: "not loopback: localhost.example.com",
      config: empty,
      domain: "localhost.example.com",
      want: [o("https://localhost.example.com", "localhost.example.com")],
    },
    {
      name: "plain_http: false overrides loopback",
      config: withStar,
      domain: "localhost:5000",
      want: [
        m("https://all.example.com", "all.example.com"),
        o("https://localhost:5000", "localhost:5000"),
      ],
    },
    {
      name: "the * mirror applies to registries without their own",
      config: withStar,
      domain: "quay.io",
      want: [m("https://all.example.com", "all.example.com"), o("https://quay.io", "quay.io")],
    },
    {
      name: "the registry itself listed as a mirror keeps its place and is not repeated",
      config: withStar,
      domain: "index.docker.io",
      want: [
        o("https://registry-1.docker.io", "docker.io"),
        m("https://m.example.com", "m.example.com"),
      ],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(endpointsFor(c.config, c.domain), c.want));
  }
});

Deno.test("hostConfigFor() finds a host's config, Docker Hub by any name, else *", async (t) => {
  const config = parseRegistriesConfig(
    'configs:\n  docker.io:\n    auth: {username: hub, password: p}\n  "*":\n    tls: {insecure_skip_verify: true}\n  a.io:\n    plain_http: true\n',
  );
  const cases = [
    { host: "registry-1.docker.io", want: { auth: { username: "hub", password: "p" } } },
    { host: "docker.io", want: { auth: { username: "hub", password: "p" } } },
    { host: "A.io", want: { plainHttp: true } },
    { host: "b.io", want: { tls: { insecureSkipVerify: true } } },
  ];
  for (const c of cases) {
    await t.step(c.host, () => assert.deepEqual(hostConfigFor(config, c.host), c.want));
  }
  await t.step("nothing without an entry or *", () => {
    assert.equal(hostConfigFor({ mirrors: {}, configs: {} }, "a.io"), undefined);
  });
});
