import { api, cleanUpAppliance, startAppliance } from "../tests/fixtures/appliance.ts";
import { functionImage } from "../tests/fixtures/function_image.ts";
import { startRegistry } from "../tests/fixtures/registry.ts";
import { pushImage } from "../tests/fixtures/registry_push.ts";
await using registry = await startRegistry();
await pushImage(registry, "fn/hello", "1", functionImage("v1"));
const app = await startAppliance();
const ns = "dbg-" + Math.random().toString(16).slice(2, 8);
try {
  await api(app, "POST", "/system/namespace/", { name: ns, labels: { openfaas: "1" } });
  const r = await api(app, "POST", "/system/functions", { service: "hello", image: `${registry.host}/fn/hello:1`, namespace: ns });
  console.log(r.status, r.text);
  console.log(app.log().split("\n").filter((l) => /error|warn|runtime/i.test(l)).join("\n").slice(0, 4000));
} finally {
  await api(app, "DELETE", `/system/functions?namespace=${ns}`, { functionName: "hello" });
  await cleanUpAppliance(app, [ns]).catch((e) => console.log("cleanup", e));
}
