// How an RPC ended, for assertions: its code, or the error itself. No runtime imports, so tests
// in the Workers runtime and e2e tests in Node share it.
import { ConnectError, type Code } from "@connectrpc/connect";

export async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

export async function errorOf(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the RPC to fail");
}
