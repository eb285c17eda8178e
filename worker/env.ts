import type { AudioRoom } from "../durable-objects/audio-room";
import type { CallObject } from "../durable-objects/call";
import type { HostObject } from "../durable-objects/host";
import type { SipAccount } from "../durable-objects/sip-account";

/** Bindings and configuration of the Worker (wrangler.toml, .dev.vars, secrets). */
export interface Env {
  CALLS: DurableObjectNamespace<CallObject>;
  HOSTS: DurableObjectNamespace<HostObject>;
  AUDIO_ROOMS: DurableObjectNamespace<AudioRoom>;
  SIP_ACCOUNTS: DurableObjectNamespace<SipAccount>;
  /** HS256 secret for client bearer tokens (sub = identity). */
  AUTH_SECRET: string;
  /** Comma-separated STUN/TURN URLs offered to clients; default Google's public STUN. */
  ICE_URLS?: string;
  /** TURN REST shared secret (coturn `static-auth-secret`); enables short-lived TURN credentials. */
  TURN_SECRET?: string;
  TURN_URLS?: string;
  /** Overrides SIP_RING_TIMEOUT_MS (worker/limits.ts) in ms; the Workers-runtime tests shorten it. */
  SIP_RING_TIMEOUT_MS?: string;
}

/** Hono environment: bindings plus per-request variables. */
export type AppEnv = { Bindings: Env };
