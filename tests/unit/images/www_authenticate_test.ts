import assert from "node:assert/strict";
import { parseChallenges } from "../../../src/images/www_authenticate.ts";

Deno.test("parseChallenges() reads registry auth challenges", async (t) => {
  const cases = [
    {
      name: "Docker Hub bearer challenge",
      header:
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      want: [{
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:library/busybox:pull",
        },
      }],
    },
    {
      name: "basic realm",
      header: 'Basic realm="Registry Realm"',
      want: [{ scheme: "basic", params: { realm: "Registry Realm" } }],
    },
    {
      name: "escaped quote, spaces after commas and two challenges",
      header: 'Bearer realm="a\\"b", error="invalid_token", Basic realm=r',
      want: [
        { scheme: "bearer", params: { realm: 'a"b', error: "invalid_token" } },
        { scheme: "basic", params: { realm: "r" } },
      ],
    },
    { name: "missing header", header: null, want: [] },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(parseChallenges(c.header), c.want));
  }
});
