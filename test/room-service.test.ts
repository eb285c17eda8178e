// LiveKit's RoomService over Twirp (worker/room-service.ts) in the Workers runtime: who may do
// what, Twirp's error shapes, both encodings, and a live call of two doors listed and ended.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { exports } from "cloudflare:workers";
import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { ListRoomsRequestSchema, ListRoomsResponseSchema } from "../proto/gen/livekit_room_pb";
import { DisconnectReason } from "../proto/gen/livekit_models_pb";
import { SignalResponseSchema } from "../proto/gen/livekit_rtc_pb";
import { liveKitToken } from "./livekit-fixtures";
import { webhookAuthorization, retryDelaySeconds } from "../worker/webhook-delivery";
import { answeredVoiceCall, AudioSocket } from "./door-clients";
import { TEST_LIVEKIT_API_KEY, TEST_LIVEKIT_API_SECRET } from "./test-secret";

let seq = 0;
const uniqueName = (role: string) => `${role}-${Date.now().toString(36)}-${seq++}`;

/** A LiveKit server token (what livekit-server-sdk's AccessToken makes) with `video` grants. */
async function serverToken(video: Record<string, unknown>, secret = TEST_LIVEKIT_API_SECRET): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return sign({ iss: TEST_LIVEKIT_API_KEY, sub: "operator", nbf: now, exp: now + 600, video }, secret, "HS256");
}

async function twirp(method: string, body: unknown, token?: string): Promise<Response> {
  return exports.default.fetch(`http://worker.test/twirp/livekit.RoomService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
}



describe("room service: authorization", () => {
  it("refuses a request without a token as unauthenticated", async () => {
    const res = await twirp("ListRooms", {});
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toMatchObject({ code: "unauthenticated" });
  });

  it("refuses a token signed with another secret as unauthenticated", async () => {
    const res = await twirp("ListRooms", {}, await serverToken({ roomList: true }, "not-the-secret-not-the-secret-0000"));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "unauthenticated" });
  });

  it("refuses a join-only token as permission_denied", async () => {
    const res = await twirp("ListRooms", {}, await serverToken({ roomJoin: true, room: "r" }));
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "permission_denied" });
  });

  it("wants roomCreate for DeleteRoom, and roomAdmin for that very room for the rest", async () => {
    expect((await twirp("DeleteRoom", { room: "x" }, await serverToken({ roomAdmin: true, room: "x" }))).status).toBe(403);
    expect((await twirp("ListParticipants", { room: "x" }, await serverToken({ roomAdmin: true, room: "y" }))).status).toBe(403);
    expect((await twirp("ListParticipants", { room: "x" }, await serverToken({ roomList: true }))).status).toBe(403);
  });

  it("answers an unknown room with not_found, and an unknown method with bad_route", async () => {
    const res = await twirp("ListParticipants", { room: "nobody-here" }, await serverToken({ roomAdmin: true, room: "nobody-here" }));
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "not_found" });
    const del = await twirp("DeleteRoom", { room: crypto.randomUUID() }, await serverToken({ roomCreate: true }));
    expect(await del.json()).toMatchObject({ code: "not_found" });
    const route = await twirp("CreateRoom", { name: "x" }, await serverToken({ roomCreate: true }));
    expect(route.status).toBe(404);
    expect(await route.json()).toMatchObject({ code: "bad_route" });
  });
});

describe("room service: calls as rooms", () => {
  it("lists a live Viam→Voice call by name, in JSON and in protobuf, with its two participants", async () => {
    const call = await answeredVoiceCall();
    const listed = await twirp("ListRooms", { names: [call.id] }, await serverToken({ roomList: true }));
    expect(listed.status).toBe(200);
    const body = await listed.json() as { rooms: Array<Record<string, unknown>> };
    expect(body.rooms).toHaveLength(1);
    expect(body.rooms[0]).toMatchObject({ name: call.id, num_participants: 2 });
    expect(JSON.parse(body.rooms[0].metadata as string)).toMatchObject({ doors: { caller: "viam", callee: "voice" } });

    const binary = await exports.default.fetch("http://worker.test/twirp/livekit.RoomService/ListRooms", {
      method: "POST",
      headers: { "content-type": "application/protobuf", authorization: `Bearer ${await serverToken({ roomList: true })}` },
      body: toBinary(ListRoomsRequestSchema, create(ListRoomsRequestSchema, { names: [call.id] })),
    });
    expect(binary.headers.get("content-type")).toBe("application/protobuf");
    const rooms = fromBinary(ListRoomsResponseSchema, new Uint8Array(await binary.arrayBuffer())).rooms;
    expect(rooms.map((r) => r.name)).toEqual([call.id]);

    const admin = await serverToken({ roomAdmin: true, room: call.id });
    const people = await (await twirp("ListParticipants", { room: call.id }, admin)).json() as { participants: Array<{ identity: string }> };
    expect(people.participants.map((p) => p.identity).sort()).toEqual([call.caller, call.callee].sort());
    const one = await twirp("GetParticipant", { room: call.id, identity: call.callee }, admin);
    expect(await one.json()).toMatchObject({ identity: call.callee, state: "ACTIVE" });
    expect((await twirp("GetParticipant", { room: call.id, identity: "stranger" }, admin)).status).toBe(404);
  });

  it("DeleteRoom ends the call for both doors: the Viam caller's stream fails, the Voice stream ends", async () => {
    const call = await answeredVoiceCall();
    const res = await twirp("DeleteRoom", { room: call.id }, await serverToken({ roomCreate: true }));
    expect(res.status).toBe(200);
    await expect((async () => { while (!(await call.viam.next()).done); })()).rejects.toThrow(/operator/);
    await expect((async () => { while ((await call.voice.next()) !== null); })()).rejects.toThrow(/operator/);
    call.voice.close();
    const listed = await (await twirp("ListRooms", { names: [call.id] }, await serverToken({ roomList: true }))).json();
    expect(listed).toEqual({ rooms: [] });
  });

  it("RemoveParticipant ends the call, and a participant not in it is not_found", async () => {
    const call = await answeredVoiceCall();
    const admin = await serverToken({ roomAdmin: true, room: call.id });
    expect((await twirp("RemoveParticipant", { room: call.id, identity: "stranger" }, admin)).status).toBe(404);
    expect((await twirp("RemoveParticipant", { room: call.id, identity: call.callee }, admin)).status).toBe(200);
    await expect((async () => { while (!(await call.viam.next()).done); })()).rejects.toThrow(/removed/);
    call.voice.close();
    expect((await twirp("ListParticipants", { room: call.id }, admin)).status).toBe(404);
  });

  it("UpdateRoomMetadata replaces the room's metadata in the operator's view", async () => {
    const call = await answeredVoiceCall();
    // The directory learns of the room from the call's outbox, a moment after the change.
    const token = await serverToken({ roomAdmin: true, room: call.id });
    let res: Response | undefined;
    for (let i = 0; i < 50; i++) {
      res = await twirp("UpdateRoomMetadata", { room: call.id, metadata: "operator's note" }, token);
      if (res.status === 200) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await res!.json()).toMatchObject({ name: call.id, metadata: "operator's note" });
    const listed = await (await twirp("ListRooms", {}, await serverToken({ roomList: true }))).json() as { rooms: Array<{ name: string; metadata: string }> };
    expect(listed.rooms.find((r) => r.name === call.id)?.metadata).toBe("operator's note");
    call.voice.close();
  });
});

/** A LiveKit participant's signalling socket: every message it gets, decoded, in order. */
async function liveKitParticipant(room: string, identity: string) {
  const res = await exports.default.fetch(`http://worker.test/rtc?access_token=${await liveKitToken(identity, room)}&auto_subscribe=1&sdk=js&version=2.23.0&protocol=17`,
    { headers: { upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  ws.binaryType = "arraybuffer";
  const cases: Array<{ case: string | undefined; value: unknown }> = [];
  ws.addEventListener("message", (e) => {
    const message = fromBinary(SignalResponseSchema, new Uint8Array(e.data as ArrayBuffer)).message;
    cases.push({ case: message.case, value: message.value });
  });
  const closed = new Promise<number>((resolve) => ws.addEventListener("close", (e) => resolve(e.code)));
  return { ws, cases, closed };
}

describe("room service: LiveKit rooms", () => {
  it("lists a LiveKit room with its participants once the directory has it, and RemoveParticipant sends a leave", async () => {
    const room = uniqueName("lk-ops");
    const alice = await liveKitParticipant(room, "alice");
    const bob = await liveKitParticipant(room, "bob");
    const list = await serverToken({ roomList: true });
    await expect.poll(async () => ((await (await twirp("ListRooms", { names: [room] }, list)).json()) as { rooms: unknown[] }).rooms,
      { timeout: 3_000 }).toHaveLength(1);
    const admin = await serverToken({ roomAdmin: true, room });
    const people = await (await twirp("ListParticipants", { room }, admin)).json() as { participants: Array<{ identity: string }> };
    expect(people.participants.map((p) => p.identity).sort()).toEqual(["alice", "bob"]);
    expect((await twirp("RemoveParticipant", { room, identity: "bob" }, admin)).status).toBe(200);
    await bob.closed;
    const leave = bob.cases.find((c) => c.case === "leave")?.value as { reason: DisconnectReason } | undefined;
    expect(leave?.reason).toBe(DisconnectReason.PARTICIPANT_REMOVED);
    expect((await twirp("DeleteRoom", { room }, await serverToken({ roomCreate: true }))).status).toBe(200);
    await alice.closed;
    expect(alice.cases.some((c) => c.case === "leave")).toBe(true);
    await expect.poll(async () => ((await (await twirp("ListRooms", { names: [room] }, list)).json()) as { rooms: unknown[] }).rooms,
      { timeout: 3_000 }).toHaveLength(0);
  });
});

describe("room service: audio relay rooms", () => {
  it("lists a room named by its path with its users, and DeleteRoom closes their sockets", async () => {
    const room = uniqueName("relay");
    const alice = await AudioSocket.join(room, uniqueName("alice"));
    const bob = await AudioSocket.join(room, uniqueName("bob"));
    const list = await serverToken({ roomList: true });
    const listed = async () => ((await (await twirp("ListRooms", { names: [room] }, list)).json()) as { rooms: Array<{ num_participants: number }> }).rooms;
    await expect.poll(async () => (await listed())[0]?.num_participants, { timeout: 3_000 }).toBe(2);
    const admin = await serverToken({ roomAdmin: true, room });
    const people = await (await twirp("ListParticipants", { room }, admin)).json() as { participants: Array<{ identity: string }> };
    expect(people.participants.map((p) => p.identity).sort()).toEqual([alice.identity, bob.identity].sort());
    expect((await twirp("RemoveParticipant", { room, identity: bob.identity }, admin)).status).toBe(200);
    expect((await bob.closed).reason).toMatch(/operator/);
    expect((await twirp("DeleteRoom", { room }, await serverToken({ roomCreate: true }))).status).toBe(200);
    expect((await alice.closed).reason).toMatch(/operator/);
    await expect.poll(listed, { timeout: 3_000 }).toHaveLength(0);
  });
});

describe("webhook signing", () => {
  it("signs the body's SHA-256 into a bare HS256 JWT issued by the API key", async () => {
    const body = JSON.stringify({ event: "room_started" });
    const jwt = await webhookAuthorization(body, "key", "secret-secret-secret", 1_700_000_000_000);
    const [, payload] = jwt.split(".");
    const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
    expect(claims).toEqual({ iss: "key", nbf: 1_700_000_000, iat: 1_700_000_000, exp: 1_700_000_300,
      sha256: btoa(String.fromCharCode(...digest)) });
  });

  it("retries first within 10 s, then backs off", () => {
    expect(retryDelaySeconds(1)).toBeLessThanOrEqual(10);
    expect(retryDelaySeconds(2)).toBeGreaterThan(retryDelaySeconds(1));
    expect(retryDelaySeconds(3)).toBeGreaterThan(retryDelaySeconds(2));
    expect(retryDelaySeconds(50)).toBe(900);
  });
});
