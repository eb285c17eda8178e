// A token bucket as a pure value: `rate` tokens a second flow in, at most `burst` are kept, and
// each admitted request takes one. No clock of its own: the caller passes `now`.
import { Code, ConnectError } from "@connectrpc/connect";
import { REQUESTS_PER_SECOND } from "./limits";

export interface TokenBucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
}

export interface Take {
  bucket: TokenBucket;
  /** Whole tokens handed out: at most `want`, possibly 0. */
  granted: number;
  /** When nothing was granted: how long until one token is there. */
  retryAfterMs: number;
}

export function fullBucket(burst: number, now: number): TokenBucket {
  return { tokens: burst, at: now };
}

/** Takes up to `want` whole tokens from the bucket as it stands at `now`. */
export function takeTokens(bucket: TokenBucket, now: number, want: number, rate: number, burst: number): Take {
  // A clock that steps back (another machine's `now`) must not mint tokens, nor take them away.
  const elapsed = Math.max(0, now - bucket.at);
  const tokens = Math.min(burst, bucket.tokens + (elapsed * rate) / 1000);
  const granted = Math.max(0, Math.min(Math.floor(want), Math.floor(tokens)));
  const left = tokens - granted;
  const retryAfterMs = granted > 0 ? 0 : Math.ceil(((1 - left) * 1000) / rate);
  return { bucket: { tokens: left, at: Math.max(now, bucket.at) }, granted, retryAfterMs };
}

/** The error a request over its identity's rate gets (at the door, and from the identity's object). */
export function overRate(identity: string, retryAfterMs: number): ConnectError {
  return new ConnectError(`${identity} makes more than ${REQUESTS_PER_SECOND} requests a second; retry in ${retryAfterMs} ms`,
    Code.ResourceExhausted);
}
