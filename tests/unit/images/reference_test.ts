import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { apiHost, parseReference } from "../../../src/images/reference.ts";

const D = "sha256:" + "a".repeat(64);
const D512 = "sha512:" + "b".repeat(128);

Deno.test("parseReference() normalises references the way containerd does", async (t) => {
  const cases: Array<{
    ref: string;
    domain: string;
    path: string;
    tag?: string;
    digest?: string;
    name: string;
  }> = [
    {
      ref: "nginx",
      domain: "docker.io",
      path: "library/nginx",
      tag: "latest",
      name: "docker.io/library/nginx:latest",
    },
    {
      ref: "nginx:1.25-alpine",
      domain: "docker.io",
      path: "library/nginx",
      tag: "1.25-alpine",
      name: "docker.io/library/nginx:1.25-alpine",
    },
    {
      ref: "openfaas/gateway:0.27.0",
      domain: "docker.io",
      path: "openfaas/gateway",
      tag: "0.27.0",
      name: "docker.io/openfaas/gateway:0.27.0",
    },
    {
      ref: "docker.io/busybox",
      domain: "docker.io",
      path: "library/busybox",
      tag: "latest",
      name: "docker.io/library/busybox:latest",
    },
    {
      ref: "index.docker.io/busybox:1",
      domain: "docker.io",
      path: "library/busybox",
      tag: "1",
      name: "docker.io/library/busybox:1",
    },
    {
      ref: "index.docker.io/openfaas/queue-worker",
      domain: "docker.io",
      path: "openfaas/queue-worker",
      tag: "latest",
      name: "docker.io/openfaas/queue-worker:latest",
    },
    {
      ref: "ghcr.io/openfaas/gateway:latest",
      domain: "ghcr.io",
      path: "openfaas/gateway",
      tag: "latest",
      name: "ghcr.io/openfaas/gateway:latest",
    },
    {
      ref: "registry.example.com:5000/team/app:v1",
      domain: "registry.example.com:5000",
      path: "team/app",
      tag: "v1",
      name: "registry.example.com:5000/team/app:v1",
    },
    {
      ref: "127.0.0.1:5000/busybox",
      domain: "127.0.0.1:5000",
      path: "busybox",
      tag: "latest",
      name: "127.0.0.1:5000/busybox:latest",
    },
    {
      ref: "localhost/app",
      domain: "localhost",
      path: "app",
      tag: "latest",
      name: "localhost/app:latest",
    },
    {
      ref: "localhost:5000/a/b/c:dev",
      domain: "localhost:5000",
      path: "a/b/c",
      tag: "dev",
      name: "localhost:5000/a/b/c:dev",
    },
    {
      ref: "[::1]:5000/app",
      domain: "[::1]:5000",
      path: "app",
      tag: "latest",
      name: "[::1]:5000/app:latest",
    },
    {
      ref: `busybox@${D}`,
      domain: "docker.io",
      path: "library/busybox",
      digest: D,
      name: `docker.io/library/busybox@${D}`,
    },
    {
      ref: `ghcr.io/o/app:1.0@${D}`,
      domain: "ghcr.io",
      path: "o/app",
      tag: "1.0",
      digest: D,
      name: `ghcr.io/o/app:1.0@${D}`,
    },
    {
      ref: `quay.io/o/app@${D512}`,
      domain: "quay.io",
      path: "o/app",
      digest: D512,
      name: `quay.io/o/app@${D512}`,
    },
    {
      ref: "a.b/c_d/e__f/g-h/i---j/k.l:Tag_1.x-Y",
      domain: "a.b",
      path: "c_d/e__f/g-h/i---j/k.l",
      tag: "Tag_1.x-Y",
      name: "a.b/c_d/e__f/g-h/i---j/k.l:Tag_1.x-Y",
    },
    {
      // A first component with uppercase letters is a host (distribution's splitDockerDomain).
      ref: "Registry/app",
      domain: "Registry",
      path: "app",
      tag: "latest",
      name: "Registry/app:latest",
    },
    {
      // Docker reads a bare host:port as image "localhost" with tag "5000", and so do we.
      ref: "localhost:5000",
      domain: "docker.io",
      path: "library/localhost",
      tag: "5000",
      name: "docker.io/library/localhost:5000",
    },
  ];
  for (const c of cases) {
    await t.step(`"${c.ref}" becomes ${c.name}`, () => {
      const r = parseReference(c.ref);
      assert.deepEqual(r, {
        original: c.ref,
        domain: c.domain,
        path: c.path,
        repository: `${c.domain}/${c.path}`,
        name: c.name,
        ...(c.tag !== undefined ? { tag: c.tag } : {}),
        ...(c.digest !== undefined ? { digest: c.digest } : {}),
      });
    });
  }
});

Deno.test("parseReference() refuses invalid references and says why", async (t) => {
  const cases = [
    { ref: "", why: /it is empty/ },
    { ref: "a".repeat(64), why: /image ID, not a reference/ },
    { ref: "NGINX", why: /repository name "library\/NGINX" must be lowercase/ },
    { ref: "ghcr.io/Owner/app", why: /repository name "Owner\/app" must be lowercase/ },
    { ref: "nginx:", why: /tag "" must be/ },
    { ref: "nginx:-dev", why: /tag "-dev" must be/ },
    { ref: "nginx:.dev", why: /tag ".dev" must be/ },
    { ref: `nginx:${"t".repeat(129)}`, why: /tag "t+" must be 1 to 128/ },
    { ref: "nginx:a/b", why: /registry host "nginx:a" is not valid/ },
    { ref: "nginx@sha256:abc", why: /digest "sha256:abc" must be sha256:<64 hex digits>/ },
    { ref: `nginx@md5:${"a".repeat(32)}`, why: /digest "md5:a+"/ },
    { ref: `nginx@sha256:${"A".repeat(64)}`, why: /digest "sha256:A+"/ },
    { ref: `nginx@${D}@${D}`, why: /digest "sha256:a+@sha256:a+"/ },
    { ref: "nginx@", why: /digest ""/ },
    { ref: "-nginx", why: /path component "-nginx"/ },
    { ref: "nginx-", why: /path component "nginx-"/ },
    { ref: "a..b/c", why: /registry host "a..b" is not valid/ },
    { ref: "-host.io/c", why: /registry host "-host.io" is not valid/ },
    { ref: "host.io:port/c", why: /registry host "host.io:port" is not valid/ },
    { ref: "ghcr.io/", why: /repository name is empty/ },
    { ref: "ghcr.io//app", why: /path component ""/ },
    { ref: "ghcr.io/app/", why: /path component ""/ },
    { ref: "ghcr.io/a___b", why: /path component "a___b"/ },
    { ref: "ghcr.io/a b", why: /path component "a b"/ },
    { ref: "https://ghcr.io/app", why: /registry host "https:" is not valid/ },
    { ref: `ghcr.io/${"a".repeat(250)}`, why: /longer than 255 characters/ },
  ];
  for (const c of cases) {
    await t.step(`"${c.ref.slice(0, 60)}" is refused`, () => {
      assert.throws(() => parseReference(c.ref), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.ok(err.message.startsWith(`invalid image reference "${c.ref}": `), err.message);
        assert.match(err.message, c.why);
        assert.doesNotMatch(err.message, /\.$/);
        return true;
      });
    });
  }
});

Deno.test("apiHost() sends Docker Hub to registry-1.docker.io and others to themselves", async (t) => {
  const cases = [
    { domain: "docker.io", want: "registry-1.docker.io" },
    { domain: "index.docker.io", want: "registry-1.docker.io" },
    { domain: "ghcr.io", want: "ghcr.io" },
    { domain: "localhost:5000", want: "localhost:5000" },
  ];
  for (const c of cases) {
    await t.step(`${c.domain} → ${c.want}`, () => assert.equal(apiHost(c.domain), c.want));
  }
});
