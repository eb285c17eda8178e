// Door: the seed-003 binary audio relay, `GET /audio/:room` as a WebSocket. It checks the room
// name and the caller's token, then hands the upgrade to the room's Durable Object, which owns
// every socket and pairing (durable-objects/audio-room.ts).
import { Code } from "@connectrpc/connect";
import type { Context } from "hono";
import { AUDIO_IDENTITY_HEADER } from "../durable-objects/audio-room";
import { closeSocket } from "../durable-objects/hibernating-object";
import { failure } from "../model/result";
import { tokenFrom, verifyIdentity } from "./auth";
import type { AppEnv } from "./env";
import { httpError } from "./http-errors";
import { forwardUpgrade } from "./object-upgrade";
import { NAME_PATTERN, NAME_RULE } from "../model/limits";
import { POLICY_VIOLATION } from "../model/close-codes";

export async function audioRelay(c: Context<AppEnv, "/audio/:room">): Promise<Response> {
  const room = c.req.param("room");
  if (!NAME_PATTERN.test(room)) {
    return httpError(c, failure(Code.InvalidArgument, `room name must be ${NAME_RULE}`));
  }
  // Browsers cannot set headers on a WebSocket upgrade, hence `?access_token=` as well.
  const identity = await verifyIdentity(tokenFrom(c.req.raw.headers, c.req.url), c.env.AUTH_SECRET);
  if (!identity.ok) return httpError(c, identity);
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    return c.json({ code: "failed_precondition", message: "this endpoint only speaks WebSocket" }, 426, { upgrade: "websocket" });
  }
  const seat = await c.env.HOSTS.getByName(identity.value).takeRoomSeat(room);
  if (!seat.ok) return closedSocket(POLICY_VIOLATION, seat.message);
  return forwardUpgrade(c.req.raw, c.env.AUDIO_ROOMS.getByName(room), { [AUDIO_IDENTITY_HEADER]: identity.value });
}

/** An upgrade accepted only to be closed at once with `code` and `reason`: a browser sees neither
 * an HTTP status nor a body on a failed upgrade, but it does see a close frame. */
function closedSocket(code: number, reason: string): Response {
  const { 0: client, 1: server } = new WebSocketPair();
  server.accept();
  closeSocket(server, code, reason);
  return new Response(null, { status: 101, webSocket: client });
}
