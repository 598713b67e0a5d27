/** Unit tests: parsing `--queue nats://…` URLs, credentials split off and hidden. */

import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { type NatsAddress, parseNatsUrl } from "../../../src/queue/nats_url.ts";

Deno.test("parseNatsUrl() splits host, port and credentials", async (t) => {
  const cases: { url: string; want: NatsAddress }[] = [
    {
      url: "nats://127.0.0.1:4222",
      want: { server: "127.0.0.1:4222", display: "nats://127.0.0.1:4222" },
    },
    {
      url: "nats://queue.lan/",
      want: { server: "queue.lan:4222", display: "nats://queue.lan:4222" },
    },
    { url: "nats://[::1]:5222", want: { server: "[::1]:5222", display: "nats://[::1]:5222" } },
    {
      url: "nats://faasd:s%40cret@10.0.0.5:4222",
      want: {
        server: "10.0.0.5:4222",
        display: "nats://faasd@10.0.0.5:4222",
        user: "faasd",
        pass: "s@cret",
      },
    },
    {
      url: "nats://faasd:@host:1",
      want: { server: "host:1", display: "nats://faasd@host:1", user: "faasd", pass: "" },
    },
    {
      url: "nats://T0KEN@host",
      want: { server: "host:4222", display: "nats://***@host:4222", token: "T0KEN" },
    },
  ];
  for (const c of cases) {
    await t.step(c.url, () => assert.deepEqual(parseNatsUrl(c.url), c.want));
  }
});

Deno.test("parseNatsUrl() rejects what is not a plain nats://host:port, without echoing secrets", async (t) => {
  const cases = [
    { url: "http://host:4222", want: /must start with nats:\/\// },
    { url: "nats://host:4222/path", want: /path/ },
    { url: "nats://host:4222?x=1", want: /query/ },
    { url: "nats://host:99999", want: /not a URL/ },
    { url: "nats://user:hunter2@host:4222/x", want: /nats:\/\/user:\*\*\*@host/ },
  ];
  for (const c of cases) {
    await t.step(c.url, () => {
      assert.throws(() => parseNatsUrl(c.url), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, c.want);
        assert.doesNotMatch(err.message, /hunter2/);
        return true;
      });
    });
  }
});
