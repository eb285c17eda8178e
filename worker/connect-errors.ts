// The one mapping of failures to what a Connect client sees, for every Connect door. ConnectErrors
// (ours, and the objects' failures through orThrow) pass as they are; a request message that does
// not decode is the client's fault (invalid_argument); a Durable Object reset under a request is
// transient (unavailable: retry); anything else is an internal failure, logged with context and
// reported as `internal` with no detail.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** connect-es reports a request message it cannot decode as `internal` with this prefix. */
const PARSE_ERROR = /^parse (binary|json)/;

/** workerd's errors for a request whose client went away (reading its body; request.signal). */
const CLIENT_GONE = /client (has )?disconnected/i;

/** workerd marks errors a retry may cure (an object reset by a deploy, an eviction, an overload). */
function isRetryable(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { retryable?: unknown }).retryable === true;
}

export function publicError(err: unknown, context: Record<string, unknown> = {}): ConnectError {
  if (err instanceof ConnectError) {
    if (err.code === Code.Internal && PARSE_ERROR.test(err.rawMessage)) {
      return new ConnectError(err.rawMessage, Code.InvalidArgument);
    }
    return err;
  }
  if ((err instanceof TypeError || (err instanceof Error && err.name === "AbortError")) && CLIENT_GONE.test(err.message)) {
    // Not a failure of ours: the client went away mid-stream. The other party of its call hears it.
    return new ConnectError("the client disconnected", Code.Unavailable);
  }
  if (isRetryable(err)) {
    console.warn("transient failure", { ...context, err: String(err) });
    return new ConnectError("temporarily unavailable, retry", Code.Unavailable);
  }
  console.error("internal failure", { ...context, err: String(err), stack: (err as Error | undefined)?.stack });
  return new ConnectError("internal error", Code.Internal);
}

/**
 * Applies `publicError` to everything a handler throws, for unary and streaming methods alike, and
 * to request messages a stream cannot decode, so a handler reading them sees invalid_argument too
 * (and tells the other party of a call that, not `internal`).
 */
export const publicErrors: Interceptor = (next) => async (req) => {
  const context = { method: `${req.service.typeName}/${req.method.name}` };
  const mapped = req.stream ? { ...req, message: mapErrors(req.message, context) } : req;
  try {
    const res = await next(mapped);
    return res.stream ? { ...res, message: mapErrors(res.message, context) } : res;
  } catch (err) {
    throw publicError(err, context);
  }
};

async function* mapErrors<T>(messages: AsyncIterable<T>, context: Record<string, unknown>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw publicError(err, context);
  }
}
