import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { parseCompose } from "../../../src/supervisor/compose.ts";
import { splitWords } from "../../../src/supervisor/compose_fields.ts";

const BASE = "/var/lib/faasd";
const parse = (text: string) => parseCompose(text, { baseDir: BASE });

Deno.test("parseCompose() reads every supported key", () => {
  const file = parse(`version: "3.7"
services:
  influxdb:
    image: docker.io/library/influxdb:1.8
    environment:
      INFLUXDB_DB: metrics
      RETRIES: 3
      EMPTY:
    volumes:
      - ./influx:/var/lib/influxdb
      - /etc/ssl/certs:/etc/ssl/certs:ro
      - type: bind
        source: ./conf
        target: /etc/influxdb
        read_only: true
    restart: on-failure
    user: "1000:1000"
    cap_add: [NET_ADMIN, CAP_SYS_PTRACE]
  grafana:
    image: grafana/grafana:10.0.0
    command: grafana-server --config "/etc/grafana/my file.ini"
    entrypoint: ["/run.sh"]
    environment:
      - GF_SECURITY_ADMIN_PASSWORD=secret=with=equals
    depends_on:
      - influxdb
    ports:
      - "127.0.0.1:3000:3000"
      - "8443:443/tcp"
      - 9000:9000
    restart: no
`);
  assert.deepEqual(file.services.map((s) => s.name), ["influxdb", "grafana"]);
  const [influx, grafana] = file.services;
  assert.deepEqual(influx.environment, { INFLUXDB_DB: "metrics", RETRIES: "3", EMPTY: "" });
  assert.deepEqual(influx.volumes, [
    { source: `${BASE}/influx`, target: "/var/lib/influxdb", readOnly: false },
    { source: "/etc/ssl/certs", target: "/etc/ssl/certs", readOnly: true },
    { source: `${BASE}/conf`, target: "/etc/influxdb", readOnly: true },
  ]);
  assert.equal(influx.restart, "on-failure");
  assert.equal(influx.user, "1000:1000");
  assert.deepEqual(influx.capAdd, ["CAP_NET_ADMIN", "CAP_SYS_PTRACE"]);
  assert.deepEqual(influx.dependsOn, []);
  assert.deepEqual(grafana.command, ["grafana-server", "--config", "/etc/grafana/my file.ini"]);
  assert.deepEqual(grafana.entrypoint, ["/run.sh"]);
  assert.deepEqual(grafana.environment, { GF_SECURITY_ADMIN_PASSWORD: "secret=with=equals" });
  assert.deepEqual(grafana.dependsOn, ["influxdb"]);
  assert.deepEqual(grafana.ports, [
    { hostIp: "127.0.0.1", hostPort: 3000, containerPort: 3000 },
    { hostIp: "0.0.0.0", hostPort: 8443, containerPort: 443 },
    { hostIp: "0.0.0.0", hostPort: 9000, containerPort: 9000 },
  ]);
  assert.equal(grafana.restart, "no");
});

Deno.test("parseCompose() defaults: restart always, no command, depends_on as a map", () => {
  const [a, b] = parse(`services:
  a: { image: a }
  b:
    image: b
    depends_on:
      a:
        condition: service_started
`).services;
  assert.equal(a.restart, "always");
  assert.equal(a.command, undefined);
  assert.deepEqual(b.dependsOn, ["a"]);
});

Deno.test("parseCompose() of an empty file or no services has no services", () => {
  assert.deepEqual(parse("").services, []);
  assert.deepEqual(parse("version: '3'\nservices:\n").services, []);
});

Deno.test("parseCompose() rejects unsupported keys and bad values with the line and key", async (t) => {
  const cases: Array<{ name: string; text: string; error: RegExp }> = [
    {
      name: "unknown service key",
      text: "services:\n  grafana:\n    image: g\n    healthcheck: {}\n",
      error:
        /^docker-compose\.yaml line 4: services\.grafana\.healthcheck: unsupported key \(supported: image,/,
    },
    {
      name: "unknown top-level key",
      text: "services: {}\nnetworks:\n  default: {}\n",
      error: /^docker-compose\.yaml line 2: networks: unsupported key/,
    },
    {
      name: "named volume",
      text: "services:\n  db:\n    image: pg\n    volumes:\n      - pgdata:/var/lib/postgresql\n",
      error:
        /line 5: services\.db\.volumes\[0\]: named volume "pgdata" is not supported: only bind mounts/,
    },
    {
      name: "volume of another type",
      text:
        "services:\n  db:\n    image: pg\n    volumes:\n      - type: tmpfs\n        target: /x\n",
      error: /line 5: services\.db\.volumes\[0\]\.type: unsupported volume type "tmpfs"/,
    },
    {
      name: "bad volume mode",
      text: "services:\n  db:\n    image: pg\n    volumes: ['./a:/a:z']\n",
      error: /line 4: services\.db\.volumes\[0\]: unsupported volume mode "z"/,
    },
    {
      name: "relative container path",
      text: "services:\n  db:\n    image: pg\n    volumes: ['./a:data']\n",
      error: /services\.db\.volumes\[0\]: container path "data" must be absolute/,
    },
    {
      name: "udp port",
      text: "services:\n  dns:\n    image: d\n    ports: ['53:53/udp']\n",
      error: /line 4: services\.dns\.ports\[0\]: unsupported protocol "udp"/,
    },
    {
      name: "port range",
      text: "services:\n  w:\n    image: w\n    ports:\n      - '8000-8010:8000-8010'\n",
      error: /line 5: services\.w\.ports\[0\]: unsupported port "8000-8010:8000-8010"/,
    },
    {
      name: "container port only",
      text: "services:\n  w:\n    image: w\n    ports: ['80']\n",
      error: /services\.w\.ports\[0\]: unsupported port "80"/,
    },
    {
      name: "port out of range",
      text: "services:\n  w:\n    image: w\n    ports: ['70000:80']\n",
      error: /services\.w\.ports\[0\]: invalid host port "70000"/,
    },
    {
      name: "same host port twice",
      text: "services:\n  w:\n    image: w\n    ports: ['80:80', '80:81']\n",
      error: /line 4: services\.w\.ports: host port 0\.0\.0\.0:80 is published twice/,
    },
    {
      name: "bad restart policy",
      text: "services:\n  w:\n    image: w\n    restart: sometimes\n",
      error:
        /line 4: services\.w\.restart: unsupported value "sometimes" \(use no, always, on-failure, unless-stopped\)/,
    },
    {
      name: "missing image",
      text: "services:\n  w:\n    restart: always\n",
      error: /line 3: services\.w: missing key "image"/,
    },
    {
      name: "image not a string",
      text: "services:\n  w:\n    image: [a]\n",
      error: /line 3: services\.w\.image: must be a string/,
    },
    {
      name: "unknown dependency",
      text: "services:\n  w:\n    image: w\n    depends_on: [db]\n",
      error: /line 4: services\.w\.depends_on: unknown service "db"/,
    },
    {
      name: "health condition",
      text:
        "services:\n  db: {image: d}\n  w:\n    image: w\n    depends_on:\n      db:\n        condition: service_healthy\n",
      error: /line 7: services\.w\.depends_on\.db\.condition: unsupported value "service_healthy"/,
    },
    {
      name: "environment entry without value",
      text: "services:\n  w:\n    image: w\n    environment:\n      - HOME\n",
      error: /line 5: services\.w\.environment\[0\]: "HOME" needs a value/,
    },
    {
      name: "unknown capability",
      text: "services:\n  w:\n    image: w\n    cap_add: [FLY]\n",
      error: /line 4: services\.w\.cap_add\[0\]: unknown capability "FLY"/,
    },
    {
      name: "bad service name",
      text: "services:\n  -bad:\n    image: w\n",
      error: /line 2: services\.-bad: invalid service name/,
    },
    {
      name: "unterminated quote in command",
      text: "services:\n  w:\n    image: w\n    command: echo 'hi\n",
      error: /line 4: services\.w\.command: unterminated single quote/,
    },
    {
      name: "services not a mapping",
      text: "services:\n  - a\n",
      error: /line 2: services: must be a mapping/,
    },
    {
      name: "duplicate key",
      text: "services:\n  w:\n    image: a\n    image: b\n",
      error: /line 4: invalid YAML: Map keys must be unique/,
    },
    {
      name: "broken YAML",
      text: "services:\n  w:\n    image: [a\n",
      error: /docker-compose\.yaml line \d+: invalid YAML/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(() => parse(c.text), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError, `${err.name}: ${err.message}`);
        assert.match(err.message, c.error);
        return true;
      });
    });
  }
});

Deno.test("splitWords() splits like a shell", async (t) => {
  const cases: Array<[string, string[]]> = [
    ["a b  c", ["a", "b", "c"]],
    [`a "b c" d`, ["a", "b c", "d"]],
    [`'a b'"c"`, ["a bc"]],
    [`a\\ b`, ["a b"]],
    [`"say \\"hi\\""`, ['say "hi"']],
    [`''`, [""]],
    [``, []],
  ];
  for (const [input, words] of cases) {
    await t.step(input || "(empty)", () => assert.deepEqual(splitWords(input), words));
  }
});
