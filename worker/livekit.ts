// Door: LiveKit signalling as livekit-server serves it to livekit-client, for peer-to-peer rooms
// of two. It checks the token and hands the WebSocket to the room's Durable Object
// (durable-objects/livekit-room.ts), which owns every session and the relay.
//
// livekit-client 2.x first tries `/rtc/v1` (one peer connection per client, always the offerer:
// two such clients cannot be joined without a media server). When that upgrade fails it asks
// `/rtc/v1/validate`; a 404 there makes it fall back to `/rtc`, the two-connection protocol a
// relay can pair. So v1 is refused exactly that way, and an unmodified client with default
// options ends up on `/rtc`.
import type { Context, Hono } from "hono";
import { LIVEKIT_GRANT_HEADER } from "../durable-objects/livekit-room";
import { tokenFrom } from "./auth";
import type { AppEnv } from "./env";
import { httpError } from "./http-errors";
import { forwardUpgrade } from "./object-upgrade";
import { verifyLiveKitToken } from "./livekit-token";

/** The body of the v1 404s. livekit-client falls back to `/rtc` on a v1 validate 404 unless the
 * body contains "requested room does not exist". */
const V1_REFUSAL = "v1 signalling is not supported: peer-to-peer rooms use /rtc";

export function liveKitSignaling(app: Hono<AppEnv>): void {
  app.get("/rtc", rtc);
  app.get("/rtc/validate", validate);
  app.get("/rtc/v1", (c) => c.text(V1_REFUSAL, 404));
  app.get("/rtc/v1/validate", validateV1);
}

async function rtc(c: Context<AppEnv>): Promise<Response> {
  const grant = await grantOf(c);
  if (!grant.ok) return httpError(c, grant, "text");
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    return c.text("this endpoint only speaks WebSocket", 426, { upgrade: "websocket" });
  }
  return forwardUpgrade(c.req.raw, c.env.LIVEKIT_ROOMS.getByName(grant.value.room), { [LIVEKIT_GRANT_HEADER]: JSON.stringify(grant.value) });
}

/** Asked by the client after a failed `/rtc` upgrade, to learn why; livekit-server's answer. */
async function validate(c: Context<AppEnv>): Promise<Response> {
  const grant = await grantOf(c);
  return grant.ok ? c.text("success") : httpError(c, grant, "text");
}

async function validateV1(c: Context<AppEnv>): Promise<Response> {
  const grant = await grantOf(c);
  // A bad token is reported as such: the client then fails with NotAllowed instead of falling back.
  if (!grant.ok) return httpError(c, grant, "text");
  return c.text(V1_REFUSAL, 404);
}

/** Token failures are unauthenticated (401), permission_denied (403) or internal (500): as
 * livekit-server reports them, plain text that livekit-client shows in its ConnectionError; never a
 * 404, which would make the client retry `/rtc` forever. */
function grantOf(c: Context<AppEnv>) {
  return verifyLiveKitToken(tokenFrom(c.req.raw.headers, c.req.url), c.env.LIVEKIT_API_KEY, c.env.LIVEKIT_API_SECRET);
}
