// LiveKit access tokens, as livekit-server-sdk's AccessToken mints them: an HS256 JWT signed with
// the API secret, `iss` = API key, `sub` = identity, `exp` and `nbf`, and the grants spread into
// the claims (`video` = {roomJoin, room, canPublish, …}, plus `name`, `metadata`, `attributes`).
// Verified with hono/jwt, as every other token of the service.
import { Code } from "@connectrpc/connect";
import { verify } from "hono/jwt";
import { failure, success, type Result } from "../model/result";
import { TrackSource } from "../proto/gen/livekit_models_pb";
import { hs256Key } from "./auth";
import type { LiveKitGrant } from "../model/livekit-grant";

export type { LiveKitGrant };
import { LIVEKIT_TOKEN_NBF_LEEWAY_S, NAME_PATTERN, NAME_RULE } from "../model/limits";


/** `canPublishSources` as AccessToken writes them (grants.ts `trackSourceToString`). */
const SOURCES: Readonly<Record<string, TrackSource>> = {
  camera: TrackSource.CAMERA,
  microphone: TrackSource.MICROPHONE,
  screen_share: TrackSource.SCREEN_SHARE,
  screen_share_audio: TrackSource.SCREEN_SHARE_AUDIO,
};

export type Claims = Record<string, unknown>;

const flag = (value: unknown, fallback: boolean) => (typeof value === "boolean" ? value : fallback);
const text = (value: unknown) => (typeof value === "string" ? value : "");
/** Identities and room names follow the one name rule of every door (limits.ts NAME_PATTERN). */
const isName = (value: unknown): value is string => typeof value === "string" && NAME_PATTERN.test(value);

/**
 * Verifies a LiveKit token as livekit-server's auth middleware does, whatever it grants: HS256 with
 * the API secret, `iss` = the API key, an `exp`, and `nbf` with leeway. Returns its claims;
 * unauthenticated for a token that is missing or bad, internal when no key is configured. The
 * RoomService door (room-service.ts) checks its grants from these claims; joining, below.
 */
export async function verifyLiveKitClaims(token: string | undefined, apiKey: string | undefined,
  apiSecret: string | undefined, now = Date.now()): Promise<Result<Claims>> {
  if (!apiKey || !apiSecret) return failure(Code.Internal, "LIVEKIT_API_KEY or LIVEKIT_API_SECRET is not configured");
  if (!token) return failure(Code.Unauthenticated, "no access_token");
  let claims: Claims;
  try {
    // nbf is checked below, with leeway: AccessToken stamps nbf = now on the minting host.
    claims = await verify(token, await hs256Key(apiSecret), { alg: "HS256", nbf: false });
  } catch (err) {
    return failure(Code.Unauthenticated, `invalid authorization token: ${(err as Error).name}`);
  }
  if (claims.iss !== apiKey) return failure(Code.Unauthenticated, "invalid API key");
  // livekit-server requires exp too: a token without one would never expire.
  if (typeof claims.exp !== "number") return failure(Code.Unauthenticated, "invalid authorization token: no exp");
  if (typeof claims.nbf === "number" && claims.nbf > now / 1000 + LIVEKIT_TOKEN_NBF_LEEWAY_S) {
    return failure(Code.Unauthenticated, "invalid authorization token: not valid yet (nbf)");
  }
  return success(claims);
}

/**
 * Verifies a LiveKit token and returns its grant for joining a room. Failures carry the code the
 * door answers with: unauthenticated (401) for a token that is bad, expired or cannot join;
 * permission_denied (403) for a valid token asking for what a peer-to-peer room cannot enforce;
 * internal when the server has no key configured.
 */
export async function verifyLiveKitToken(token: string | undefined, apiKey: string | undefined,
  apiSecret: string | undefined, now = Date.now()): Promise<Result<LiveKitGrant>> {
  const verified = await verifyLiveKitClaims(token, apiKey, apiSecret, now);
  if (!verified.ok) return verified;
  const claims = verified.value;
  const video = (typeof claims.video === "object" && claims.video !== null ? claims.video : {}) as Claims;
  if (video.roomJoin !== true) return failure(Code.Unauthenticated, "permissions denied: the token does not grant roomJoin");
  if (!isName(video.room)) return failure(Code.Unauthenticated, `the token's video.room must be ${NAME_RULE}`);
  if (!isName(claims.sub)) return failure(Code.Unauthenticated, `the token's sub (identity) must be ${NAME_RULE}`);

  // A direct peer connection carries every track both ways, and nobody can be in one unseen.
  if (video.canSubscribe === false) {
    return failure(Code.PermissionDenied, "canSubscribe=false cannot be enforced in a peer-to-peer room");
  }
  if (video.hidden === true) return failure(Code.PermissionDenied, "hidden participants are not possible in a peer-to-peer room");

  const canPublish = flag(video.canPublish, true);
  const sources = Array.isArray(video.canPublishSources) ? video.canPublishSources : [];
  const attributes = typeof claims.attributes === "object" && claims.attributes !== null
    ? Object.fromEntries(Object.entries(claims.attributes).filter((e): e is [string, string] => typeof e[1] === "string"))
    : {};
  return success({
    identity: claims.sub,
    room: video.room,
    name: text(claims.name),
    metadata: text(claims.metadata),
    attributes,
    canPublish,
    canPublishSources: sources.flatMap((s) => (typeof s === "string" && s in SOURCES ? [SOURCES[s]] : [])),
    canSubscribe: true,
    canPublishData: flag(video.canPublishData, canPublish),
    canUpdateOwnMetadata: flag(video.canUpdateOwnMetadata, false),
  });
}
