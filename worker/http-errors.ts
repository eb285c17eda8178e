// The one mapping from a failure (model/result.ts) to an HTTP answer, for every door that answers
// over plain HTTP (call history and hang-up, the audio relay's and LiveKit's upgrades). The status
// is the one the Connect protocol gives the code (https://connectrpc.com/docs/protocol#error-codes),
// so a client sees the same status for the same failure on every door.
import { Code } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Failure } from "../model/result";

/**
 * How the body reads: Connect's error JSON `{ code, message }`, or the bare message as text (what
 * livekit-server sends and livekit-client shows in its ConnectionError).
 */
export type ErrorBody = "json" | "text";

/** Internal failures are logged here with the request's path and reach the client without detail. */
export function httpError(c: Context, failed: Failure, body: ErrorBody = "json"): Response {
  let message = failed.message;
  if (failed.code === Code.Internal) {
    console.error("request failed", { method: c.req.method, path: c.req.path, message });
    message = "internal error";
  }
  const status = codeToHttpStatus(failed.code) as ContentfulStatusCode;
  return body === "text" ? c.text(message, status) : c.json({ code: codeToString(failed.code), message }, status);
}
