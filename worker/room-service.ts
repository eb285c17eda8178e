// Door: LiveKit's RoomService over Twirp (`POST /twirp/livekit.RoomService/<Method>`, JSON or
// protobuf), as livekit-server serves it, for operators: every call of every door is a room (its
// name is the call id), and so are LiveKit rooms and audio relay rooms. livekit-server-sdk's
// RoomServiceClient drives it unmodified.
//
// Authorized by LiveKit server tokens, checked as livekit-server's pkg/service/roomservice.go does:
// `roomList` for ListRooms, `roomCreate` for DeleteRoom, `roomAdmin` for that room for the rest. A
// token that is missing or fails verification gets `unauthenticated`; a valid one without the grant
// gets `permission_denied` (livekit-server answers `unauthenticated` there too; the operator's tools
// tell the two apart this way). An unknown room or participant gets `not_found`.
import { create, fromBinary, fromJson, toBinary, toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { Context } from "hono";
import type { DirectoryEntry } from "../durable-objects/room-directory";
import { participantMessage, roomMessage } from "../codecs/livekit-operator";
import { directoryShard, type OperatorParticipant, type OperatorRoom, type RoomKind } from "../model/operator-events";
import { ROOM_DIRECTORY_SHARDS } from "../model/limits";
import { failure, success, type Result } from "../model/result";
import { ParticipantInfoSchema, RoomSchema } from "../proto/gen/livekit_models_pb";
import {
  DeleteRoomRequestSchema, DeleteRoomResponseSchema, ListParticipantsRequestSchema, ListParticipantsResponseSchema,
  ListRoomsRequestSchema, ListRoomsResponseSchema, RemoveParticipantResponseSchema, RoomParticipantIdentitySchema,
  UpdateRoomMetadataRequestSchema,
} from "../proto/gen/livekit_room_pb";
import { tokenFrom } from "./auth";
import type { AppEnv } from "./env";
import { verifyLiveKitClaims, type Claims } from "./livekit-token";

/** A RoomService request is one small message; livekit-server limits API bodies the same way. */
const MAX_REQUEST_BYTES = 64 * 1024;
const CALL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What an object holding rooms answers for RoomService (CallObject, LiveKitRoom, AudioRoom). */
interface OperatorRoomObject {
  operatorRoom(): Promise<Result<{ room: OperatorRoom; participants: OperatorParticipant[] }>>;
  endByOperator(reason: "participant_removed" | "room_deleted", identity?: string): Promise<Result<void>>;
}

function roomObject(env: Env, kind: RoomKind, name: string): OperatorRoomObject {
  const stub = kind === "call" ? env.CALLS.getByName(name)
    : kind === "livekit" ? env.LIVEKIT_ROOMS.getByName(name) : env.AUDIO_ROOMS.getByName(name);
  return stub as unknown as OperatorRoomObject;
}

/** The video grant of a verified token, as livekit-server reads it (auth.VideoGrant). */
interface VideoGrant {
  roomList?: boolean;
  roomCreate?: boolean;
  roomAdmin?: boolean;
  room?: string;
}

type Handler<I extends DescMessage, O extends DescMessage> = {
  input: I;
  output: O;
  run: (env: Env, grant: VideoGrant, request: MessageShape<I>) => Promise<Result<MessageShape<O>>>;
};

function handler<I extends DescMessage, O extends DescMessage>(input: I, output: O,
  run: Handler<I, O>["run"]): Handler<DescMessage, DescMessage> {
  return { input, output, run } as unknown as Handler<DescMessage, DescMessage>;
}

const denied = (grant: string) => failure(Code.PermissionDenied, `permissions denied: the token does not grant ${grant}`);

/** roomAdmin for this very room (auth.go EnsureAdminPermission). */
function adminOf(grant: VideoGrant, room: string): Result<void> {
  return grant.roomAdmin === true && grant.room === room ? success(undefined) : denied(`roomAdmin for room ${room}`);
}

const METHODS: Readonly<Record<string, Handler<DescMessage, DescMessage>>> = {
  ListRooms: handler(ListRoomsRequestSchema, ListRoomsResponseSchema, async (env, grant, req) => {
    if (grant.roomList !== true) return denied("roomList");
    const rooms = req.names.length
      ? (await Promise.all([...new Set(req.names)].map((name) => findRoom(env, name)))).flatMap((e) => (e ? [e.room] : []))
      : (await Promise.all(Array.from({ length: ROOM_DIRECTORY_SHARDS }, (_, shard) => shardStub(env, shard).list())))
        .flat().map((e) => e.room);
    return success(create(ListRoomsResponseSchema, { rooms: rooms.map(roomMessage) }));
  }),

  DeleteRoom: handler(DeleteRoomRequestSchema, DeleteRoomResponseSchema, async (env, grant, req) => {
    if (grant.roomCreate !== true) return denied("roomCreate");
    const entry = await findRoom(env, req.room);
    if (!entry) return roomNotFound();
    const ended = await roomObject(env, entry.kind, req.room).endByOperator("room_deleted");
    return ended.ok ? success(create(DeleteRoomResponseSchema)) : ended;
  }),

  ListParticipants: handler(ListParticipantsRequestSchema, ListParticipantsResponseSchema, async (env, grant, req) => {
    const allowed = adminOf(grant, req.room);
    if (!allowed.ok) return allowed;
    const view = await viewOf(env, req.room);
    if (!view.ok) return view;
    return success(create(ListParticipantsResponseSchema, { participants: view.value.participants.map(participantMessage) }));
  }),

  GetParticipant: handler(RoomParticipantIdentitySchema, ParticipantInfoSchema, async (env, grant, req) => {
    const allowed = adminOf(grant, req.room);
    if (!allowed.ok) return allowed;
    const view = await viewOf(env, req.room);
    if (!view.ok) return view;
    const participant = view.value.participants.find((p) => p.identity === req.identity);
    return participant ? success(participantMessage(participant)) : failure(Code.NotFound, "participant does not exist");
  }),

  RemoveParticipant: handler(RoomParticipantIdentitySchema, RemoveParticipantResponseSchema, async (env, grant, req) => {
    const allowed = adminOf(grant, req.room);
    if (!allowed.ok) return allowed;
    const entry = await findRoom(env, req.room);
    if (!entry) return roomNotFound();
    const removed = await roomObject(env, entry.kind, req.room).endByOperator("participant_removed", req.identity);
    return removed.ok ? success(create(RemoveParticipantResponseSchema)) : removed;
  }),

  UpdateRoomMetadata: handler(UpdateRoomMetadataRequestSchema, RoomSchema, async (env, grant, req) => {
    const allowed = adminOf(grant, req.room);
    if (!allowed.ok) return allowed;
    const entry = await findRoom(env, req.room);
    if (!entry) return roomNotFound();
    // Empty metadata changes nothing (livekit_room.proto: "skipping updates if left empty").
    const updated = req.metadata ? await shardStub(env, directoryShard(req.room)).setMetadata(req.room, req.metadata) : entry;
    return updated ? success(roomMessage(updated.room)) : roomNotFound();
  }),
};

function roomNotFound() {
  return failure(Code.NotFound, "requested room does not exist");
}

function shardStub(env: Env, shard: number) {
  return env.ROOM_DIRECTORY.getByName(`shard-${shard}`);
}

/** A room by name: the directory knows every room once its object's outbox reached it; one that
 * started a moment ago is asked directly (a room's name is its object's): a call id is a call's,
 * any other name an audio room's or a LiveKit room's. */
async function findRoom(env: Env, name: string): Promise<DirectoryEntry | null> {
  if (!name) return null;
  const entry = await shardStub(env, directoryShard(name)).lookup(name);
  if (entry) return entry;
  for (const kind of (CALL_ID.test(name) ? ["call"] : ["audio", "livekit"]) as RoomKind[]) {
    const view = await roomObject(env, kind, name).operatorRoom();
    if (view.ok) return { kind, room: view.value.room };
  }
  return null;
}

async function viewOf(env: Env, name: string): Promise<Result<{ room: OperatorRoom; participants: OperatorParticipant[] }>> {
  const entry = await findRoom(env, name);
  if (!entry) return roomNotFound();
  return roomObject(env, entry.kind, name).operatorRoom();
}

// ---- Twirp ---------------------------------------------------------------------------------

/** Twirp's error codes and their HTTP statuses (twitchtv/twirp errors.go). */
const TWIRP: Readonly<Partial<Record<Code, [string, number]>>> = {
  [Code.Canceled]: ["canceled", 408],
  [Code.Unknown]: ["unknown", 500],
  [Code.InvalidArgument]: ["invalid_argument", 400],
  [Code.DeadlineExceeded]: ["deadline_exceeded", 408],
  [Code.NotFound]: ["not_found", 404],
  [Code.AlreadyExists]: ["already_exists", 409],
  [Code.PermissionDenied]: ["permission_denied", 403],
  [Code.ResourceExhausted]: ["resource_exhausted", 429],
  [Code.FailedPrecondition]: ["failed_precondition", 412],
  [Code.Aborted]: ["aborted", 409],
  [Code.OutOfRange]: ["out_of_range", 400],
  [Code.Unimplemented]: ["unimplemented", 501],
  [Code.Internal]: ["internal", 500],
  [Code.Unavailable]: ["unavailable", 503],
  [Code.DataLoss]: ["dataloss", 500],
  [Code.Unauthenticated]: ["unauthenticated", 401],
};

/** A Twirp error: JSON `{code, msg}` whatever the request's encoding, as Twirp servers send it. */
export function twirpError(code: string, msg: string, status: number): Response {
  return new Response(JSON.stringify({ code, msg }), { status, headers: { "content-type": "application/json" } });
}

function failed(result: { code: Code; message: string }, method: string): Response {
  if (result.code === Code.Internal || !TWIRP[result.code]) {
    console.error("room service failed", { method, message: result.message });
    return twirpError("internal", "internal error", 500);
  }
  const [code, status] = TWIRP[result.code]!;
  return twirpError(code, result.message, status);
}

/** `POST /twirp/livekit.RoomService/:method` */
export async function roomService(c: Context<AppEnv, "/twirp/livekit.RoomService/:method">): Promise<Response> {
  const name = c.req.param("method");
  const method = Object.hasOwn(METHODS, name) ? METHODS[name] : undefined;
  if (!method) return twirpError("bad_route", `no handler for path "${c.req.path}"`, 404);
  const contentType = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  const json = contentType === "application/json";
  if (!json && contentType !== "application/protobuf") {
    return twirpError("bad_route", `unexpected Content-Type: "${contentType}"`, 404);
  }
  const verified = await verifyLiveKitClaims(tokenFrom(c.req.raw.headers), c.env.LIVEKIT_API_KEY, c.env.LIVEKIT_API_SECRET);
  if (!verified.ok) return failed(verified, name);
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.length > MAX_REQUEST_BYTES) return twirpError("malformed", `request body over ${MAX_REQUEST_BYTES} bytes`, 400);
  let request: MessageShape<DescMessage>;
  try {
    request = json
      ? fromJson(method.input, bytes.length ? JSON.parse(new TextDecoder().decode(bytes)) : {}, { ignoreUnknownFields: true })
      : fromBinary(method.input, bytes);
  } catch (err) {
    return twirpError("malformed", `the request could not be decoded: ${(err as Error).message}`, 400);
  }
  const result = await method.run(c.env, grantOf(verified.value), request);
  if (!result.ok) return failed(result, name);
  // Twirp's JSON: field names as in the .proto, defaults included (protojson UseProtoNames, EmitUnpopulated).
  return json
    ? new Response(JSON.stringify(toJson(method.output, result.value, { useProtoFieldName: true, alwaysEmitImplicit: true })),
      { headers: { "content-type": "application/json" } })
    : new Response(toBinary(method.output, result.value), { headers: { "content-type": "application/protobuf" } });
}

function grantOf(claims: Claims): VideoGrant {
  const video = typeof claims.video === "object" && claims.video !== null ? (claims.video as Record<string, unknown>) : {};
  return {
    roomList: video.roomList === true, roomCreate: video.roomCreate === true, roomAdmin: video.roomAdmin === true,
    room: typeof video.room === "string" ? video.room : undefined,
  };
}
