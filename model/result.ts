// Errors cross the Worker ↔ Durable Object boundary as values, not exceptions: an RPC
// exception loses its type on the way, a value keeps its code.
import { Code } from "@connectrpc/connect";

export interface Failure {
  ok: false;
  code: Code;
  message: string;
}

export type Result<T> = { ok: true; value: T } | Failure;

export function failure(code: Code, message: string): Failure {
  return { ok: false, code, message };
}

export function success<T>(value: T): Result<T> {
  return { ok: true, value };
}
