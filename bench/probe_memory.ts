/**
 * Probe (not a benchmark scenario): where the appliance's RSS growth for N functions goes. Starts
 * `faasd up` as the provider scenario does (own data dir, bridge, subnet; a local registry with
 * the e2e function image), deploys one function and deletes it, then deploys N (4 at once) and
 * compares /proc/PID/status, smaps_rollup and smaps (grouped: V8's 256 KB pages, glibc arenas,
 * [heap], the deno binary's pages), fds and threads before and after. Removes everything it made.
 *
 *   deno run -A bench/probe_memory.ts [--n 100] [--v8 FLAGS] [--env K=V]... [--deno-flags "..."]
 *     [--inspect] [--gc] [--profile] [--idle S] [--label TEXT]
 *
 * --v8: DENO_V8_FLAGS for the appliance, comma-separated (default: the shipped flags).
 * --inspect: also reads Deno.memoryUsage() and V8's heap spaces through the inspector, and the
 *   same after a forced full GC; with --profile, V8's sampling heap profiler during the deploys and
 *   10 s of idle (allocation by function). --idle S: RSS again after S seconds idle.
 * Appends its summary to /tmp/probe_memory.log; the appliance's stdout (--trace-gc) goes to
 * /tmp/probe_child_stdout.txt.
 */

import { randomBytes } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Containerd } from "../src/containerd/client.ts";
import { removeTestNetwork, testNetwork, upArgs } from "../tests/fixtures/appliance.ts";
import { functionImage } from "../tests/fixtures/function_image.ts";
import { purgeNamespace } from "../tests/fixtures/namespace.ts";
import { startRegistry } from "../tests/fixtures/registry.ts";
import { APPLIANCE_V8_FLAGS } from "./scenarios/provider.ts";
import { pushImage } from "../tests/fixtures/registry_push.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const argv = [...Deno.args];
let n = 100;
let v8 = APPLIANCE_V8_FLAGS;
const extraEnv: Record<string, string> = {};
let inspect = false;
let label = "";
let gc = false;
let idle = 0;
let profile = false;
let concurrency = 4;
let denoFlags: string[] = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--n") n = Number(argv[++i]);
  else if (a === "--v8") v8 = argv[++i];
  else if (a === "--env") {
    const [k, ...v] = argv[++i].split("=");
    extraEnv[k] = v.join("=");
  } else if (a === "--inspect") inspect = true;
  else if (a === "--gc") gc = true;
  else if (a === "--idle") idle = Number(argv[++i]);
  else if (a === "--profile") profile = true;
  else if (a === "--concurrency") concurrency = Number(argv[++i]);
  else if (a === "--deno-flags") denoFlags = argv[++i].split(" ").filter(Boolean);
  else if (a === "--label") label = argv[++i];
}

type Mapping = { start: string; name: string; size: number; rss: number; anon: number };

async function cat(path: string): Promise<string> {
  const out = await new Deno.Command("cat", { args: [path], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout);
}

async function smaps(pid: number): Promise<Mapping[]> {
  const text = await cat(`/proc/${pid}/smaps`);
  const maps: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of text.split("\n")) {
    const m = line.match(/^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/);
    if (m) {
      cur = {
        start: m[1],
        name: m[3] || "[anon]",
        size: (parseInt(m[2], 16) - parseInt(m[1], 16)) / 1024,
        rss: 0,
        anon: 0,
      };
      maps.push(cur);
      continue;
    }
    const f = line.match(/^(Rss|Anonymous):\s+(\d+) kB/);
    if (f && cur) {
      if (f[1] === "Rss") cur.rss = Number(f[2]);
      else cur.anon = Number(f[2]);
    }
  }
  return maps;
}

function kb(text: string, field: string): number {
  return Number(text.match(new RegExp(`^${field}:\\s+(\\d+)`, "m"))?.[1] ?? NaN);
}

class Cdp {
  #ws: WebSocket;
  #id = 0;
  #pending = new Map<number, (v: unknown) => void>();
  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.id !== undefined) this.#pending.get(msg.id)?.(msg.result ?? msg.error);
    };
  }
  static async connect(port: number): Promise<Cdp> {
    const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    const ws = new WebSocket(list[0].webSocketDebuggerUrl);
    await new Promise((r) => ws.onopen = r);
    return new Cdp(ws);
  }
  // deno-lint-ignore no-explicit-any
  send(method: string, params: unknown = {}): Promise<any> {
    const id = ++this.#id;
    this.#ws.send(JSON.stringify({ id, method, params }));
    return new Promise((r) => this.#pending.set(id, r));
  }
  // deno-lint-ignore no-explicit-any
  async eval(expr: string): Promise<any> {
    const r = await this.send("Runtime.evaluate", {
      expression: expr,
      returnByValue: true,
      awaitPromise: true,
    });
    return r?.result?.value ?? r;
  }
  close() {
    this.#ws.close();
  }
}

async function snapshot(pid: number, cdp?: Cdp) {
  const status = await cat(`/proc/${pid}/status`);
  const rollup = await cat(`/proc/${pid}/smaps_rollup`);
  const fds = (await new Deno.Command("ls", { args: [`/proc/${pid}/fd`], stdout: "piped" })
    .output()).stdout;
  const s = {
    rss: kb(status, "VmRSS"),
    anon: kb(status, "RssAnon"),
    file: kb(status, "RssFile"),
    shmem: kb(status, "RssShmem"),
    threads: kb(status, "Threads"),
    fds: new TextDecoder().decode(fds).trim().split("\n").length,
    pss: kb(rollup, "Pss"),
    maps: await smaps(pid),
    mem: undefined as unknown,
    heap: undefined as unknown,
  };
  if (cdp) {
    s.mem = await cdp.eval("JSON.stringify(Deno.memoryUsage())").then(JSON.parse);
    s.heap = await cdp.eval(
      "import('node:v8').then(v8 => JSON.stringify(v8.getHeapSpaceStatistics().map(s => [s.space_name, Math.round(s.space_size/1024), Math.round(s.space_used_size/1024)])))",
    ).then((x: string) => {
      try {
        return JSON.parse(x);
      } catch {
        return x;
      }
    });
  }
  return s;
}

function diffMaps(a: Mapping[], b: Mapping[]) {
  const byKey = (ms: Mapping[]) => {
    const m = new Map<string, Mapping>();
    for (const x of ms) m.set(`${x.start} ${x.name}`, x);
    return m;
  };
  const am = byKey(a);
  const bm = byKey(b);
  const groups = new Map<string, { d: number; after: number; count: number }>();
  const add = (g: string, d: number, after: number) => {
    const e = groups.get(g) ?? { d: 0, after: 0, count: 0 };
    e.d += d;
    e.after += after;
    e.count++;
    groups.set(g, e);
  };
  const classify = (x: Mapping) => {
    if (x.name !== "[anon]") return x.name.startsWith("/") ? `file ${x.name}` : x.name;
    // glibc arenas: 64 MB reserved (HEAP_MAX 64 MB on x86_64), thread stacks: 8 MB.
    if (x.size === 65536 || x.size === 65532) return "anon 64MB (glibc arena?)";
    if (x.size >= 8000 && x.size <= 8200) return "anon ~8MB (thread stack?)";
    if (x.size === 256) return "anon 256KB (V8 page?)";
    if (x.size <= 4) return "anon <=4KB";
    return `anon other`;
  };
  const all = new Set([...am.keys(), ...bm.keys()]);
  const bigAnon: string[] = [];
  for (const k of all) {
    const x = am.get(k);
    const y = bm.get(k);
    const m = y ?? x!;
    const d = (y?.rss ?? 0) - (x?.rss ?? 0);
    add(classify(m), d, y?.rss ?? 0);
    if (Math.abs(d) >= 1024) {
      bigAnon.push(
        `${m.start} ${m.name} size ${m.size} kB: ${x?.rss ?? "-"} → ${y?.rss ?? "-"} kB`,
      );
    }
  }
  return {
    groups: [...groups.entries()].sort((p, q) => Math.abs(q[1].d) - Math.abs(p[1].d)).slice(0, 14)
      .map(([g, e]) =>
        `${g}: Δ${(e.d / 1024).toFixed(1)} MB (now ${(e.after / 1024).toFixed(1)}, ${e.count} maps)`
      ),
    big: bigAnon,
  };
}

async function api(url: string, auth: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: auth },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

const client = await Containerd.connect({ socket: "/run/containerd/containerd.sock" });
const ns = `fprobe-${randomBytes(3).toString("hex")}`;
const registry = await startRegistry();
await pushImage(registry, "bench/fn", "1", functionImage("bench"));
const image = `${registry.host}/bench/fn:1`;
const dataDir = await mkdtemp(join(tmpdir(), "faasd-probe-"));
const network = testNetwork();
const inspectPort = 20000 + Math.floor(Math.random() * 20000);
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    ...(inspect ? [`--inspect=127.0.0.1:${inspectPort}`] : []),
    ...denoFlags,
    "-A",
    "main.ts",
    ...upArgs(dataDir, network),
  ],
  cwd: ROOT,
  env: { ...(v8 ? { DENO_V8_FLAGS: v8 } : {}), ...extraEnv },
  stdout: "piped",
  stderr: "piped",
}).spawn();
const childOut = await Deno.open("/tmp/probe_child_stdout.txt", {
  write: true,
  create: true,
  truncate: true,
});
child.stdout.pipeTo(childOut.writable).catch(() => {});
let log = "";
const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
let port = 0;
while (!port) {
  const { value, done } = await reader.read();
  if (done) throw new Error(`exited:\n${log}`);
  log += value;
  port = Number(log.match(/faasd-ts is up on port (\d+)\. Log in with:\n.*\n/)?.[1] ?? 0);
}
(async () => {
  for (;;) {
    const { done } = await reader.read();
    if (done) return;
  }
})();
const pid = child.pid;
const password = (await readFile(join(dataDir, "secrets/basic-auth-password"), "utf8")).trim();
const url = `http://127.0.0.1:${port}`;
const auth = `Basic ${btoa(`admin:${password}`)}`;
const cdp = inspect ? await Cdp.connect(inspectPort) : undefined;
const settle = () => new Promise((r) => setTimeout(r, 1500));
const deploy = async (name: string) => {
  const r = await api(url, auth, "POST", "/system/functions", {
    service: name,
    image,
    namespace: ns,
    envVars: { grace_period: "5s" },
  });
  if (r.status !== 202) throw new Error(`deploy ${name}: ${r.status} ${r.text}`);
  for (let i = 0; i < 2000; i++) {
    const res = await fetch(`${url}/function/${name}.${ns}/`);
    await res.text();
    if (res.status === 200) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no 200 from ${name}`);
};
const del = async (name: string) => {
  await api(url, auth, "DELETE", `/system/functions?namespace=${ns}`, { functionName: name });
};
const out: string[] = [];
const say = (s: string) => {
  out.push(s);
  console.log(s);
};
try {
  const r = await api(url, auth, "POST", "/system/namespace/", {
    name: ns,
    labels: { openfaas: "1" },
  });
  if (r.status !== 201) throw new Error(`ns: ${r.status} ${r.text}`);
  const sStart = await snapshot(pid, cdp);
  await deploy("warm");
  await del("warm");
  await new Promise((r) => setTimeout(r, 1000));
  await settle();
  if (gc && cdp) await cdp.send("HeapProfiler.collectGarbage");
  const s0 = await snapshot(pid, cdp);
  const startProfile = async () => {
    if (!profile || !cdp) return;
    await cdp.send("HeapProfiler.enable");
    await cdp.send("HeapProfiler.startSampling", {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  };
  const stopProfile = async (what: string) => {
    if (!profile || !cdp) return;
    const r = await cdp.send("HeapProfiler.stopSampling");
    type Node = {
      callFrame: { functionName: string; url: string; lineNumber: number };
      selfSize: number;
      children: Node[];
    };
    const self = new Map<string, number>();
    const incl = new Map<string, number>();
    let total = 0;
    const walk = (n: Node, stack: Set<string>): number => {
      const key = `${n.callFrame.functionName || "(anon)"} ${
        n.callFrame.url.replace(/^.*\/(src|node_modules|ext)\//, "$1/")
      }:${n.callFrame.lineNumber + 1}`;
      self.set(key, (self.get(key) ?? 0) + n.selfSize);
      total += n.selfSize;
      let sum = n.selfSize;
      const inner = new Set(stack);
      inner.add(key);
      for (const c of n.children) sum += walk(c, inner);
      if (!stack.has(key)) incl.set(key, (incl.get(key) ?? 0) + sum);
      return sum;
    };
    walk(r.profile.head, new Set());
    say(`--- allocation profile (${what}): total sampled ${(total / 1048576).toFixed(1)} MB`);
    for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
      say(`  self ${(v / 1024).toFixed(0).padStart(7)} KB  ${k}`);
    }
    for (
      const [k, v] of [...incl.entries()].filter(([k]) => /src\//.test(k)).sort((a, b) =>
        b[1] - a[1]
      ).slice(0, 40)
    ) {
      say(`  incl ${(v / 1024).toFixed(0).padStart(7)} KB  ${k}`);
    }
  };
  const names = Array.from({ length: n }, (_, i) => `fleet${i}`);
  const t0 = performance.now();
  await startProfile();
  const times: number[] = [];
  await pool(names, concurrency, async (name) => {
    const t = performance.now();
    await deploy(name);
    times.push(performance.now() - t);
  });
  times.sort((a, b) => a - b);
  const deployMedian = times[Math.floor(times.length / 2)];
  const deployS = (performance.now() - t0) / 1000;
  await stopProfile("deploy of the fleet");
  await settle();
  if (profile) {
    await startProfile();
    await new Promise((r) => setTimeout(r, 10_000));
    await stopProfile("10 s idle with the fleet");
  }
  const s1 = await snapshot(pid, cdp);
  let s2;
  let s3;
  if (idle > 0) {
    await new Promise((r) => setTimeout(r, idle * 1000));
    s3 = await snapshot(pid);
  }
  if (cdp) {
    await cdp.send("HeapProfiler.collectGarbage");
    s2 = await snapshot(pid, cdp);
  }
  say(
    `=== ${label} v8=${v8} env=${JSON.stringify(extraEnv)} flags=${
      denoFlags.join(" ")
    } n=${n} deploy ${deployS.toFixed(1)} s, each (POST → 200) median ${
      deployMedian.toFixed(1)
    } ms, p90 ${times[Math.floor(times.length * 0.9)].toFixed(1)} ms`,
  );
  const line = (t: string, s: typeof s0) =>
    say(
      `${t}: rss ${(s.rss / 1024).toFixed(1)} anon ${(s.anon / 1024).toFixed(1)} file ${
        (s.file / 1024).toFixed(1)
      } pss ${(s.pss / 1024).toFixed(1)} threads ${s.threads} fds ${s.fds}${
        s.mem ? " mem " + JSON.stringify(s.mem) : ""
      }`,
    );
  line("start", sStart);
  line("before", s0);
  line("after", s1);
  if (s2) line("after GC", s2);
  if (s3) line(`after ${idle} s idle`, s3);
  say(
    `GROWTH rss ${((s1.rss - s0.rss) / 1024).toFixed(1)} MB anon ${
      ((s1.anon - s0.anon) / 1024).toFixed(1)
    } file ${((s1.file - s0.file) / 1024).toFixed(1)}`,
  );
  const d = diffMaps(s0.maps, s1.maps);
  for (const g of d.groups) say("  " + g);
  for (const b of d.big) say("    " + b);
  if (s0.heap) say(`heap before ${JSON.stringify(s0.heap)}`);
  if (s2?.heap) say(`heap after GC ${JSON.stringify(s2.heap)}`);
  if (s1.heap) say(`heap after  ${JSON.stringify(s1.heap)}`);
  await pool(names, 4, del);
} finally {
  cdp?.close();
  child.kill("SIGTERM");
  await child.status;
  const failures = await purgeNamespace(client, ns);
  await removeTestNetwork(network, dataDir);
  await registry.stop();
  await client.close();
  if (failures.length) console.log("cleanup failures", failures);
  await Deno.writeTextFile("/tmp/probe_memory.log", out.join("\n") + "\n\n", { append: true });
}
