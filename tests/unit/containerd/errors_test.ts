import assert from "node:assert/strict";
import { ContainerdError, fromGrpc } from "../../../src/containerd/errors.ts";
import {
  AlreadyExistsError,
  CancelledError,
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  NotImplementedError,
  PermissionDeniedError,
  TimeoutError,
  UnauthenticatedError,
  UnavailableError,
} from "../../../src/errors.ts";

const ctx = { action: "Tasks.Start", socket: "/run/containerd/containerd.sock", namespace: "ns1" };

function grpcError(code: number, details: string): Error {
  return Object.assign(new Error(`${code} X: ${details}`), { code, details });
}

Deno.test("fromGrpc() maps each gRPC status code to our error class", async (t) => {
  const cases: Array<[number, new (...a: never[]) => Error]> = [
    [1, CancelledError],
    [2, ContainerdError],
    [3, InvalidArgumentError],
    [4, TimeoutError],
    [5, NotFoundError],
    [6, AlreadyExistsError],
    [7, PermissionDeniedError],
    [9, FailedPreconditionError],
    [10, ConflictError],
    [11, InvalidArgumentError],
    [12, NotImplementedError],
    [13, ContainerdError],
    [14, UnavailableError],
    [16, UnauthenticatedError],
  ];
  for (const [code, cls] of cases) {
    await t.step(`code ${code} → ${cls.name}`, () => {
      const err = fromGrpc(grpcError(code, "boom"), ctx);
      assert.ok(err instanceof cls, `got ${err.name}`);
      assert.ok(err.cause instanceof Error, "keeps the gRPC error as cause");
    });
  }
});

Deno.test("fromGrpc() names the action, the namespace and containerd's words", () => {
  const err = fromGrpc(grpcError(5, 'container "fn-1": not found'), ctx);
  assert.equal(
    err.message,
    'containerd Tasks.Start in namespace "ns1": container "fn-1": not found',
  );
});

Deno.test("fromGrpc() tells how to start containerd when it is unavailable", () => {
  const err = fromGrpc(grpcError(14, "No connection established"), ctx);
  assert.match(
    err.message,
    /^cannot reach containerd at \/run\/containerd\/containerd.sock — is it running\? systemctl start containerd/,
  );
});

Deno.test("fromGrpc() passes errors without a status code through unchanged", () => {
  const plain = new TypeError("not grpc");
  assert.equal(fromGrpc(plain, ctx), plain);
  assert.ok(fromGrpc("text", ctx) instanceof Error);
});
