// The seed-003 audio relay through the real Worker and AudioRoom objects, in the Workers runtime.
import { evictDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { AudioMessageType, encode, SampleFormat, type AudioPacket, type AudioParams } from "../codecs/audio-codec";
import { AudioSocket } from "./door-clients";
import { tokenFor } from "./tokens";

const PARAMS: AudioParams = { sampleRate: 48_000, channels: 2, format: SampleFormat.Float32, chunkSize: 4_800 };
const EMPTY = new Uint8Array(0);
const bytes = (...values: number[]) => new Uint8Array(values);

let rooms = 0;
const newRoom = () => `audio-room-${++rooms}-${Date.now().toString(36)}`;

async function upgrade(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(`http://worker.test${path}`, { ...init, headers: { upgrade: "websocket", ...init.headers } });
}

/** Sockets a test opened, closed after it: the identities here are reused from test to test,
 * and one identity may be in only MAX_AUDIO_ROOMS_PER_IDENTITY rooms at once. */
const opened: AudioSocket[] = [];
const join = async (room: string, identity: string) => {
  const socket = await AudioSocket.join(room, identity);
  opened.push(socket);
  return socket;
};
afterEach(async () => {
  const closing = opened.splice(0);
  for (const s of closing) {
    try { s.ws.close(1000, "test over"); } catch { /* already closed */ }
  }
  await Promise.all(closing.map((s) => Promise.race([s.closed, new Promise((r) => setTimeout(r, 1_000))])));
});

const handshake = (username: string, optional = EMPTY): AudioPacket =>
  ({ type: AudioMessageType.Handshake, params: PARAMS, username, optional });
const answer = (type: 3 | 4 | 5, optional = EMPTY): AudioPacket => ({ type, optional });
const data = (payload: Uint8Array): AudioPacket => ({ type: AudioMessageType.Data, data: payload });

/** Two parties in one room, paired by a handshake and an accept. */
async function pairedCall(room = newRoom()) {
  const alice = await join(room, "alice");
  const bob = await join(room, "bob");
  alice.send(handshake("bob"));
  await bob.next();
  bob.send(answer(AudioMessageType.Accept));
  await alice.next();
  return { room, alice, bob };
}

describe("GET /audio/:room refusals", () => {
  it("refuses an upgrade without a token with 401 unauthenticated", async () => {
    const res = await upgrade(`/audio/${newRoom()}`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "unauthenticated", message: "missing bearer token" });
  });

  it("refuses a token signed with another secret with 401", async () => {
    const token = await tokenFor("alice", { secret: "not-the-secret" });
    const res = await upgrade(`/audio/${newRoom()}?access_token=${token}`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "unauthenticated" });
  });

  it("answers a plain GET with 426", async () => {
    const res = await exports.default.fetch(`http://worker.test/audio/${newRoom()}?access_token=${await tokenFor("alice")}`);
    expect(res.status).toBe(426);
  });

  it("refuses a room name outside the name pattern with 400", async () => {
    const res = await upgrade(`/audio/${"r".repeat(129)}?access_token=${await tokenFor("alice")}`);
    expect(res.status).toBe(400);
  });

  it("upgrades a browser request that carries an Origin", async () => {
    const res = await upgrade(`/audio/${newRoom()}?access_token=${await tokenFor("alice")}`, { headers: { origin: "https://app.example" } });
    expect(res.status).toBe(101);
    res.webSocket!.accept();
    res.webSocket!.close(1000);
  });

  it("accepts the token in an Authorization header too", async () => {
    const res = await upgrade(`/audio/${newRoom()}`, { headers: { authorization: `Bearer ${await tokenFor("alice")}` } });
    expect(res.status).toBe(101);
    res.webSocket!.accept();
    res.webSocket!.close(1000);
  });
});

describe("audio call set-up", () => {
  it("answers a handshake naming someone not in the room with user-not-found", async () => {
    const alice = await join(newRoom(), "alice");
    alice.send(handshake("bob"));
    expect(await alice.nextBytes()).toEqual(encode({ type: AudioMessageType.UserNotFound }));
  });

  it("answers a handshake naming the caller itself with user-not-found", async () => {
    const alice = await join(newRoom(), "alice");
    alice.send(handshake("alice"));
    expect(await alice.nextBytes()).toEqual(encode({ type: AudioMessageType.UserNotFound }));
  });

  it("forwards a handshake to the callee with the caller's identity as username", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    const bob = await join(room, "bob");
    alice.send(handshake("bob", bytes(9, 8, 7)));
    expect(await bob.nextBytes()).toEqual(encode(handshake("alice", bytes(9, 8, 7))));
  });

  it("ignores an identity header sent by the client", async () => {
    const room = newRoom();
    const bob = await join(room, "bob");
    const res = await upgrade(`/audio/${room}?access_token=${await tokenFor("alice")}`, { headers: { "x-audio-identity": "mallory" } });
    const alice = new AudioSocket("alice", res.webSocket!);
    alice.send(handshake("bob"));
    expect(await bob.nextBytes()).toEqual(encode(handshake("alice")));
  });

  it("forwards the callee's accept to the caller unchanged", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    const bob = await join(room, "bob");
    alice.send(handshake("bob"));
    await bob.next();
    bob.send(answer(AudioMessageType.Accept, bytes(1, 2)));
    expect(await alice.nextBytes()).toEqual(encode(answer(AudioMessageType.Accept, bytes(1, 2))));
  });

  it("forwards the callee's reject to the caller unchanged", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    const bob = await join(room, "bob");
    alice.send(handshake("bob"));
    await bob.next();
    bob.send(answer(AudioMessageType.Reject, bytes(4)));
    expect(await alice.nextBytes()).toEqual(encode(answer(AudioMessageType.Reject, bytes(4))));
  });

  it("forwards a counter-proposal to the caller and pairs both on the caller's accept", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    const bob = await join(room, "bob");
    alice.send(handshake("bob"));
    await bob.next();
    const counter: AudioPacket = { type: AudioMessageType.CounterProposal,
      params: { ...PARAMS, sampleRate: 16_000, format: SampleFormat.Int16 }, optional: bytes(5) };
    bob.send(counter);
    expect(await alice.nextBytes()).toEqual(encode(counter));
    alice.send(answer(AudioMessageType.Accept));
    expect(await bob.nextBytes()).toEqual(encode(answer(AudioMessageType.Accept)));
    alice.send(data(bytes(1, 2, 3)));
    expect(await bob.nextBytes()).toEqual(encode(data(bytes(1, 2, 3))));
  });

  it("forwards the caller's reject of a counter-proposal to the callee", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    const bob = await join(room, "bob");
    alice.send(handshake("bob"));
    await bob.next();
    bob.send({ type: AudioMessageType.CounterProposal, params: PARAMS, optional: EMPTY });
    await alice.next();
    alice.send(answer(AudioMessageType.Reject));
    expect(await bob.nextBytes()).toEqual(encode(answer(AudioMessageType.Reject)));
  });

  it("rejects a handshake naming a party already in a call", async () => {
    const { room } = await pairedCall();
    const carol = await join(room, "carol");
    carol.send(handshake("bob"));
    expect(await carol.nextBytes()).toEqual(encode(answer(AudioMessageType.Reject)));
  });
});

describe("audio data and hang-up", () => {
  it("relays data packets both ways byte for byte", async () => {
    const { alice, bob } = await pairedCall();
    alice.send(data(bytes(1, 2, 3, 4)));
    bob.send(data(bytes(250, 251)));
    expect(await bob.nextBytes()).toEqual(encode(data(bytes(1, 2, 3, 4))));
    expect(await alice.nextBytes()).toEqual(encode(data(bytes(250, 251))));
  });

  it("relays 10 000 data packets in order without loss", async () => {
    const { alice, bob } = await pairedCall();
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 10_000; i++) {
      const payload = new Uint8Array(1 + (i % 97));
      new DataView(payload.buffer).setUint8(0, i & 0xff);
      payload.fill((i * 31) & 0xff, 1);
      sent.push(encode(data(payload)));
      alice.send(sent[i]);
    }
    for (let i = 0; i < sent.length; i++) {
      const received = await bob.nextBytes();
      if (!equalBytes(received, sent[i])) expect.fail(`packet ${i} differs`);
    }
    await bob.expectNothingPending();
  });

  it("forwards a drop to the peer unchanged", async () => {
    const { alice, bob } = await pairedCall();
    bob.send(answer(AudioMessageType.Drop, bytes(7)));
    expect(await alice.nextBytes()).toEqual(encode(answer(AudioMessageType.Drop, bytes(7))));
  });

  it("discards data the peer sent before it heard of the drop and keeps its socket open", async () => {
    const { alice, bob } = await pairedCall();
    bob.send(answer(AudioMessageType.Drop));
    await alice.next();
    alice.send(data(bytes(1)));
    alice.send(handshake("bob"));
    expect(await bob.nextBytes()).toEqual(encode(handshake("alice")));
  });

  it("lets both parties place a new call after a drop", async () => {
    const { alice, bob } = await pairedCall();
    alice.send(answer(AudioMessageType.Drop));
    await bob.next();
    bob.send(handshake("alice"));
    expect(await alice.nextBytes()).toEqual(encode(handshake("bob")));
  });

  it("sends a drop to the peer when a socket closes", async () => {
    const { alice, bob } = await pairedCall();
    alice.ws.close(1000, "bye");
    expect(await bob.nextBytes()).toEqual(encode(answer(AudioMessageType.Drop)));
  });

  it("completes the closing handshake of a client that closes without a code", async () => {
    const { alice, bob } = await pairedCall();
    alice.ws.close();
    expect((await alice.closed).code).toBe(1000);
    expect(await bob.nextBytes()).toEqual(encode(answer(AudioMessageType.Drop)));
  });

  it("answers a keep-alive ping with pong and keeps the socket open", async () => {
    const { alice, bob } = await pairedCall();
    alice.send("ping");
    expect(await alice.next()).toBe("pong");
    alice.send(data(bytes(42)));
    expect(await bob.nextBytes()).toEqual(encode(data(bytes(42))));
  });

  it("replaces an identity's older socket with 1008 and drops its call", async () => {
    const { room, alice, bob } = await pairedCall();
    const alice2 = await join(room, "alice");
    expect(await alice.closed).toEqual({ code: 1008, reason: "replaced by a newer connection" });
    expect(await bob.nextBytes()).toEqual(encode(answer(AudioMessageType.Drop)));
    bob.send(handshake("alice"));
    expect(await alice2.nextBytes()).toEqual(encode(handshake("bob")));
  });

  it("keeps relaying a pair after the room object was evicted", async () => {
    const { room, alice, bob } = await pairedCall();
    await evictDurableObject(env.AUDIO_ROOMS.getByName(room));
    alice.send(data(bytes(1, 1)));
    expect(await bob.nextBytes()).toEqual(encode(data(bytes(1, 1))));
    bob.send(data(bytes(2, 2)));
    expect(await alice.nextBytes()).toEqual(encode(data(bytes(2, 2))));
  });
});

describe("audio protocol errors", () => {
  /** Sends `frame` from a paired alice; expects her socket closed with `code` and bob told with a drop. */
  async function expectViolation(frame: Uint8Array | string, code: number) {
    const { alice, bob } = await pairedCall();
    alice.send(frame);
    const closed = await alice.closed;
    expect(closed.code).toBe(code);
    expect(closed.reason).not.toBe("");
    expect(await bob.nextBytes()).toEqual(encode(answer(AudioMessageType.Drop)));
    return closed;
  }

  it("closes a socket that sends a text frame with 1003", async () => {
    await expectViolation("hello", 1003);
  });

  it("closes a socket that sends a 65 537-byte frame (64 KiB + 1) with 1009", async () => {
    // A data packet is its 6-byte header and its samples.
    const frame = encode(data(new Uint8Array(65_536 + 1 - 6)));
    expect(frame.byteLength).toBe(65_537);
    await expectViolation(frame, 1009);
  });

  it("relays a frame of exactly 65 536 bytes (64 KiB) byte for byte", async () => {
    const { alice, bob } = await pairedCall();
    const frame = encode(data(new Uint8Array(65_536 - 6).map((_, i) => i % 251)));
    expect(frame.byteLength).toBe(65_536);
    alice.send(frame);
    expect(await bob.nextBytes()).toEqual(frame);
  });

  it("closes a socket that sends a packet shorter than the header with 1002", async () => {
    await expectViolation(bytes(6, 0, 0), 1002);
  });

  it("closes a socket whose packet Length disagrees with the frame size with 1002", async () => {
    const packet = encode(data(bytes(1, 2, 3)));
    new DataView(packet.buffer).setUint32(0, packet.length + 1, true);
    await expectViolation(packet, 1002);
  });

  it("closes a socket that sends an unknown message type with 1002", async () => {
    await expectViolation(bytes(6, 0, 0, 0, 7, 0), 1002);
  });

  it("closes a socket that sends user-not-found, which only the server sends, with 1002", async () => {
    await expectViolation(encode({ type: AudioMessageType.UserNotFound }), 1002);
  });

  it("closes a socket that sends a handshake while paired with 1002", async () => {
    await expectViolation(encode(handshake("carol")), 1002);
  });

  it("closes a socket that proposes an unknown format with 1007", async () => {
    const packet = encode({ type: AudioMessageType.CounterProposal, params: PARAMS, optional: EMPTY });
    packet[12] = 5;
    await expectViolation(packet, 1007);
  });

  it("closes a socket whose handshake username is not UTF-8 with 1007", async () => {
    const packet = encode(handshake("ab"));
    packet[19] = 0xff;
    await expectViolation(packet, 1007);
  });

  it("closes a socket that sends data before its call is accepted with 1002 and drops the callee", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    const bob = await join(room, "bob");
    alice.send(handshake("bob"));
    await bob.next();
    alice.send(data(bytes(1)));
    expect((await alice.closed).code).toBe(1002);
    expect(await bob.nextBytes()).toEqual(encode(answer(AudioMessageType.Drop)));
  });

  it("closes a socket that accepts with no pending handshake with 1002", async () => {
    const alice = await join(newRoom(), "alice");
    alice.send(answer(AudioMessageType.Accept));
    expect((await alice.closed).code).toBe(1002);
  });

  it("closes a caller that accepts its own handshake before any answer with 1002", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    const bob = await join(room, "bob");
    alice.send(handshake("bob"));
    await bob.next();
    alice.send(answer(AudioMessageType.Accept));
    expect((await alice.closed).code).toBe(1002);
    expect(await bob.nextBytes()).toEqual(encode(answer(AudioMessageType.Drop)));
  });
});

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
