import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chainIds } from "../../../src/images/unpack.ts";

const sha = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

Deno.test("chainIds() follows containerd: the first is the diffID, then sha256 of 'parent diff'", () => {
  const diffs = [sha("a"), sha("b"), sha("c")];
  const c1 = sha(`${diffs[0]} ${diffs[1]}`);
  const c2 = sha(`${c1} ${diffs[2]}`);
  assert.deepEqual(chainIds(diffs), [diffs[0], c1, c2]);
  assert.deepEqual(chainIds([]), []);
});
