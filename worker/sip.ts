// Door: ondewo.sip.Sip (seed 001), call control for SIP accounts on the shared call model. Each
// RPC authenticates the account, checks its input and calls the account's Durable Object
// (durable-objects/sip-account.ts), where the session, the calls and the status history live.
//
// Authentication: `Authorization: Basic base64(account:password)` checked against the account's
// PBKDF2 hash (wrong passwords are throttled per client address and per account), or
// `Bearer <token>` whose `sub` is the account. RegisterAccount creates an account only for a bearer
// token whose `sub` is its name (unauthenticated without one), and registers it again for the
// account's own credentials (permission_denied otherwise).
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { ringTimeoutMs } from "../durable-objects/sip-account";
import { SERVER_HEADERS, type SipStatusEntry } from "../model/sip-model";
import { Sip, SipStatus_StatusType, type SipStatusSchema } from "../proto/gen/ondewo/sip/sip_pb";
import { failure, success, type Result } from "../model/result";
import { tokenFrom, verifyIdentity } from "./auth";
import { orThrow } from "./call-streams";
import { envOf } from "./connect-context";
import {
  MAX_RPC_TIMEOUT_MS, MAX_SIP_HEADER_KEY_BYTES, MAX_SIP_HEADER_VALUE_BYTES, MAX_SIP_HEADERS, MAX_SIP_PASSWORD_BYTES,
  MAX_WAV_FILES, MAX_WAV_TOTAL_BYTES, NAME_PATTERN, NAME_RULE, SIP_MAX_RESPONSE_BYTES,
} from "../model/limits";
import { admit } from "./rate-limit";
import { decodeWav, WavError, type PcmAudio } from "../codecs/wav-audio";

const utf8 = new TextEncoder();

/** Room for the protobuf framing around the largest WAV list we accept, so a list just over the
 * bound still reaches our own check (and its clearer message) instead of connect's read limit. */
const WAV_REQUEST_SLACK_BYTES = 64 * 1024;

/** The Sip service's own bounds: WAV lists are far larger than signaling messages, and so can
 * status histories be. connect-es reads the protocol switches of per-service options (not the
 * router's), so gRPC, which needs trailers a Worker cannot send, is turned off again here as in
 * connect-mount.ts; the option is not in the type, hence the variable instead of a literal. */
const SIP_HANDLER_OPTIONS = {
  grpc: false,
  readMaxBytes: MAX_WAV_TOTAL_BYTES + WAV_REQUEST_SLACK_BYTES,
  writeMaxBytes: SIP_MAX_RESPONSE_BYTES,
  maxTimeoutMs: MAX_RPC_TIMEOUT_MS,
};

interface Caller {
  account: string;
  stub: DurableObjectStub<import("../durable-objects/sip-account").SipAccount>;
}

const WRONG_LOGIN = failure(Code.Unauthenticated, "wrong account name or password");

/** The client's address as Cloudflare's edge reports it (a client cannot set it there); the
 * failed-login throttle counts by it. Without it (a local run) all clients share one address. */
function clientAddress(headers: Headers): string {
  return headers.get("cf-connecting-ip") ?? "unknown";
}

/** The account proven by Basic credentials, or why not; null when the request has no Basic. */
async function basicAccount(env: Env, headers: Headers): Promise<Result<string> | null> {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(headers.get("authorization") ?? "");
  if (!match) return null;
  let decoded: string;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(atob(match[1]), (c) => c.charCodeAt(0)));
  } catch {
    return WRONG_LOGIN;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return WRONG_LOGIN;
  const account = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (!NAME_PATTERN.test(account) || utf8.encode(password).byteLength > MAX_SIP_PASSWORD_BYTES) return WRONG_LOGIN;
  const checked = await env.SIP_ACCOUNTS.getByName(account).authenticate(password, clientAddress(headers));
  return checked.ok ? success(account) : checked;
}

/** The account the request acts for; else `unauthenticated`, or `resource_exhausted` while its
 * address or account is throttled for wrong passwords. */
async function requireAccount(ctx: HandlerContext): Promise<Caller> {
  const env = envOf(ctx);
  const basic = await basicAccount(env, ctx.requestHeader);
  const account = orThrow(basic ?? await verifyIdentity(tokenFrom(ctx.requestHeader), env.AUTH_SECRET));
  await admit(env, account);
  return { account, stub: env.SIP_ACCOUNTS.getByName(account) };
}

/** Who RegisterAccount's caller has proven to be, if anyone (a wrong proof is no proof, but a
 * throttled one is refused as such). */
async function provenAccount(ctx: HandlerContext): Promise<string | undefined> {
  const env = envOf(ctx);
  const basic = await basicAccount(env, ctx.requestHeader);
  if (basic && !basic.ok && basic.code === Code.ResourceExhausted) orThrow(basic);
  if (basic !== null) return basic.ok ? basic.value : undefined;
  const identity = await verifyIdentity(tokenFrom(ctx.requestHeader), env.AUTH_SECRET);
  if (!identity.ok && identity.code === Code.Internal) orThrow(identity);
  return identity.ok ? identity.value : undefined;
}

function requireName(field: string, value: string): string {
  if (!NAME_PATTERN.test(value)) throw new ConnectError(`${field} must be ${NAME_RULE}`, Code.InvalidArgument);
  return value;
}

/** Client headers for a call: bounded, and never one the server sets itself. */
function callHeaders(headers: Record<string, string>): Record<string, string> {
  const entries = Object.entries(headers);
  if (entries.length > MAX_SIP_HEADERS) {
    throw new ConnectError(`${entries.length} headers; at most ${MAX_SIP_HEADERS} allowed`, Code.InvalidArgument);
  }
  for (const [key, value] of entries) {
    if (key === "" || utf8.encode(key).byteLength > MAX_SIP_HEADER_KEY_BYTES) {
      throw new ConnectError(`header names must be 1–${MAX_SIP_HEADER_KEY_BYTES} bytes`, Code.InvalidArgument);
    }
    // A header is one SIP header line: CR or LF would let a value forge further lines, NUL ends it.
    if (/[\r\n\0]/.test(key) || /[\r\n\0]/.test(value)) {
      throw new ConnectError(`header ${JSON.stringify(key)} holds CR, LF or NUL`, Code.InvalidArgument);
    }
    if (utf8.encode(value).byteLength > MAX_SIP_HEADER_VALUE_BYTES) {
      throw new ConnectError(`header ${key} is longer than ${MAX_SIP_HEADER_VALUE_BYTES} bytes`, Code.InvalidArgument);
    }
    if ((SERVER_HEADERS as readonly string[]).includes(key.toLowerCase())) {
      throw new ConnectError(`header ${key} is set by the server`, Code.InvalidArgument);
    }
  }
  return Object.fromEntries(entries);
}

/** ws(s)://host/audio/ for the request's host: where the relay of this Worker listens. */
function audioBaseOf(ctx: HandlerContext): string {
  const url = new URL(ctx.url);
  return `${url.protocol === "https:" ? "wss:" : "ws:"}//${url.host}/audio/`;
}

function wavFiles(files: Uint8Array[]): PcmAudio[] {
  if (files.length === 0) throw new ConnectError("wav_files is empty", Code.InvalidArgument);
  if (files.length > MAX_WAV_FILES) {
    throw new ConnectError(`${files.length} WAV files; at most ${MAX_WAV_FILES} per request`, Code.ResourceExhausted);
  }
  const total = files.reduce((n, f) => n + f.byteLength, 0);
  if (total > MAX_WAV_TOTAL_BYTES) {
    throw new ConnectError(`${total} bytes of WAV files; at most ${MAX_WAV_TOTAL_BYTES} per request`, Code.ResourceExhausted);
  }
  return files.map((file, i) => {
    try {
      return decodeWav(file);
    } catch (err) {
      if (err instanceof WavError) throw new ConnectError(`wav_files[${i}]: ${err.message}`, Code.InvalidArgument);
      throw err;
    }
  });
}

function toWire(account: string, entry: SipStatusEntry): MessageInitShape<typeof SipStatusSchema> {
  return {
    accountName: account,
    timestamp: timestampFromMs(entry.at),
    statusType: SipStatus_StatusType[entry.type],
    calleeId: entry.calleeId,
    transferCallId: entry.transferCallId,
    headers: entry.headers,
  };
}

/**
 * The door's one error mapping: ConnectErrors (ours, and the objects' failures through orThrow)
 * pass as they are; anything else is an internal failure, logged with context and reported
 * without detail.
 */
async function guarded<T>(ctx: HandlerContext, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    console.error("sip door failure", { method: ctx.method.name, err: String(err), stack: (err as Error).stack });
    throw new ConnectError("internal error", Code.Internal);
  }
}

export function sip(router: ConnectRouter): void {
  router.service(Sip, {
    registerAccount: (req, ctx) => guarded(ctx, async () => {
      const account = requireName("account_name", req.accountName);
      if (req.password === "") throw new ConnectError("password is required", Code.InvalidArgument);
      if (utf8.encode(req.password).byteLength > MAX_SIP_PASSWORD_BYTES) {
        throw new ConnectError(`password is longer than ${MAX_SIP_PASSWORD_BYTES} bytes`, Code.InvalidArgument);
      }
      const actor = await provenAccount(ctx);
      // Only a proven caller has a budget to spend; creating an account needs no credentials.
      if (actor) await admit(envOf(ctx), actor);
      orThrow(await envOf(ctx).SIP_ACCOUNTS.getByName(account).register(account, req.password, actor));
      return {};
    }),

    startSession: (req, ctx) => guarded(ctx, async () => {
      const { account, stub } = await requireAccount(ctx);
      if (req.accountName !== "" && req.accountName !== account) {
        throw new ConnectError(`${account} may not start a session for ${req.accountName}`, Code.PermissionDenied);
      }
      const ringSeconds = ringTimeoutMs(envOf(ctx)) / 1000;
      if (req.autoAnswerInterval < 0 || req.autoAnswerInterval >= ringSeconds) {
        throw new ConnectError(`auto_answer_interval must be 0 (ring until answered) or 1–${Math.ceil(ringSeconds) - 1} s, below the ${ringSeconds} s ring timeout`, Code.InvalidArgument);
      }
      orThrow(await stub.startSession(req.autoAnswerInterval, audioBaseOf(ctx)));
      return {};
    }),

    endSession: (_req, ctx) => guarded(ctx, async () => {
      const { stub } = await requireAccount(ctx);
      orThrow(await stub.endSession());
      return {};
    }),

    startCall: (req, ctx) => guarded(ctx, async () => {
      const { account, stub } = await requireAccount(ctx);
      const callee = requireName("callee_id", req.calleeId);
      if (callee === account) throw new ConnectError("an account cannot call itself", Code.InvalidArgument);
      orThrow(await stub.startCall(callee, callHeaders(req.headers)));
      return {};
    }),

    endCall: (req, ctx) => guarded(ctx, async () => {
      const { stub } = await requireAccount(ctx);
      orThrow(await stub.endCall(req.hardHangup));
      return {};
    }),

    transferCall: (req, ctx) => guarded(ctx, async () => {
      const { account, stub } = await requireAccount(ctx);
      const target = requireName("transfer_id", req.transferId);
      if (target === account) throw new ConnectError("a call cannot be transferred to the transferring account", Code.InvalidArgument);
      orThrow(await stub.transferCall(target, callHeaders(req.headers)));
      return {};
    }),

    getSipStatus: (_req, ctx) => guarded(ctx, async () => {
      const { account, stub } = await requireAccount(ctx);
      return toWire(account, orThrow(await stub.latestStatus()));
    }),

    getSipStatusHistory: (_req, ctx) => guarded(ctx, async () => {
      const { account, stub } = await requireAccount(ctx);
      return { statusHistory: orThrow(await stub.statusHistory()).map((entry) => toWire(account, entry)) };
    }),

    playWavFiles: (req, ctx) => guarded(ctx, async () => {
      const { stub } = await requireAccount(ctx);
      orThrow(await stub.playWav(wavFiles(req.wavFiles)));
      return {};
    }),

    mute: (_req, ctx) => guarded(ctx, async () => {
      const { stub } = await requireAccount(ctx);
      orThrow(await stub.mute(true));
      return {};
    }),

    unMute: (_req, ctx) => guarded(ctx, async () => {
      const { stub } = await requireAccount(ctx);
      orThrow(await stub.mute(false));
      return {};
    }),
  }, SIP_HANDLER_OPTIONS);
}
