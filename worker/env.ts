import type { AudioRoom } from "../durable-objects/audio-room";
import type { CallObject } from "../durable-objects/call";
import type { HostObject } from "../durable-objects/host";
import type { LiveKitRoom } from "../durable-objects/livekit-room";
import type { SipAccount } from "../durable-objects/sip-account";

/** Bindings and configuration of the Worker (wrangler.toml, .dev.vars, secrets). */
export interface Env {
  CALLS: DurableObjectNamespace<CallObject>;
  HOSTS: DurableObjectNamespace<HostObject>;
  AUDIO_ROOMS: DurableObjectNamespace<AudioRoom>;
  LIVEKIT_ROOMS: DurableObjectNamespace<LiveKitRoom>;
  SIP_ACCOUNTS: DurableObjectNamespace<SipAccount>;
  /** HS256 secret for client bearer tokens (sub = identity). */
  AUTH_SECRET: string;
  /** Comma-separated STUN/TURN URLs offered to clients; default Google's public STUN. */
  ICE_URLS?: string;
  /** TURN REST shared secret (coturn `static-auth-secret`); enables short-lived TURN credentials. */
  TURN_SECRET?: string;
  TURN_URLS?: string;
  /** LiveKit API key: the `iss` of LiveKit access tokens (wrangler.toml [vars], default "devkey"). */
  LIVEKIT_API_KEY?: string;
  /** LiveKit API secret (a secret): HS256 key of LiveKit access tokens. */
  LIVEKIT_API_SECRET?: string;
  /** "1" enables `POST /dev/token` (worker/dev-tokens.ts): tokens for any identity, for local demos
   * and e2e tests only. Never set it in production. */
  DEV_TOKENS?: string;
  /** Overrides SIP_RING_TIMEOUT_MS (worker/limits.ts) in ms; the Workers-runtime tests shorten it. */
  SIP_RING_TIMEOUT_MS?: string;
}

/** Hono environment: bindings plus per-request variables. */
export type AppEnv = { Bindings: Env };
