/** A scripted stand-in for the exec layer: records every call and answers from a handler. */

import type { Exec, ExecOptions, ExecResult } from "../../../src/cni/exec.ts";

export interface Call {
  file: string;
  args: string[];
  opts: ExecOptions;
}

export function fakeExec(
  handler: (call: Call) => Partial<ExecResult> | undefined = () => undefined,
): { exec: Exec; calls: Call[] } {
  const calls: Call[] = [];
  const exec: Exec = (file, args, opts = {}) => {
    const call = { file, args, opts };
    calls.push(call);
    const r = handler(call) ?? {};
    return Promise.resolve({ code: r.code ?? 0, stdout: r.stdout ?? "", stderr: r.stderr ?? "" });
  };
  return { exec, calls };
}
