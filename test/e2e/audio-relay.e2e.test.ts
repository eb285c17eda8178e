// Two Node clients (the `ws` package) talk seed-003 binary audio through `wrangler dev`:
// real sockets, real hibernatable Durable Object, the same bytes in and out.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { AudioMessageType, encode, SampleFormat, type AudioPacket } from "../../codecs/audio-codec";
import { baseUrl, tokenFor } from "./server";


const PACKETS_EACH_WAY = 1_000;
/** 10 ms of 48 kHz mono float32: a realistic frame size. */
const SAMPLES_BYTES = 480 * 4;

const token = (sub: string) => tokenFor(sub);
const uniqueRoom = () => `audio-e2e-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
const EMPTY = new Uint8Array(0);

/** A relay client that queues binary messages for the test to await in order. */
class NodeAudioClient {
  private readonly inbox: Buffer[] = [];
  private waiting: ((message: Buffer) => void) | null = null;
  /** The close frame the server sent: its code and its reason. */
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (message: Buffer) => {
      const wake = this.waiting;
      this.waiting = null;
      if (wake) wake(message);
      else this.inbox.push(message);
    });
    this.closed = new Promise((resolve) => ws.on("close", (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
  }

  static async join(room: string, identity: string): Promise<NodeAudioClient> {
    const url = `${baseUrl.replace(/^http/, "ws")}/audio/${room}?access_token=${await token(identity)}`;
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => { ws.once("open", () => resolve()); ws.once("error", reject); });
    const client = new NodeAudioClient(ws);
    opened.push(client);
    return client;
  }

  send(packet: AudioPacket | Uint8Array): void {
    this.ws.send(packet instanceof Uint8Array ? packet : encode(packet));
  }

  next(timeoutMs = 10_000): Promise<Uint8Array> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(new Uint8Array(queued));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nothing received in ${timeoutMs} ms`)), timeoutMs);
      this.waiting = (message) => { clearTimeout(timer); resolve(new Uint8Array(message)); };
    });
  }
}

const opened: NodeAudioClient[] = [];
afterEach(() => {
  for (const client of opened.splice(0)) client.ws.terminate();
});

/** Alice's handshake to Bob, as far as Bob's ring. */
async function ring(room: string) {
  const alice = await NodeAudioClient.join(room, "alice");
  const bob = await NodeAudioClient.join(room, "bob");
  alice.send({ type: AudioMessageType.Handshake, username: "bob", optional: EMPTY,
    params: { sampleRate: 48_000, channels: 1, format: SampleFormat.Float32, chunkSize: 480 } });
  const handshake = await bob.next();
  expect(new TextDecoder().decode(handshake.subarray(19, 24))).toBe("alice");
  return { alice, bob };
}

async function pair(room: string) {
  const { alice, bob } = await ring(room);
  bob.send({ type: AudioMessageType.Accept, optional: EMPTY });
  expect(await alice.next()).toEqual(encode({ type: AudioMessageType.Accept, optional: EMPTY }));
  return { alice, bob };
}

/** `packet` with its Length field (little-endian u32 at 0, counting the whole packet) set to `length`. */
function withLength(packet: Uint8Array, length: number): Uint8Array {
  new DataView(packet.buffer, packet.byteOffset).setUint32(0, length, true);
  return packet;
}

function audioFrames(count: number): Uint8Array[] {
  return Array.from({ length: count }, () => encode({ type: AudioMessageType.Data, data: randomBytes(SAMPLES_BYTES) }));
}

async function receiveAll(client: NodeAudioClient, expected: Uint8Array[]): Promise<void> {
  for (let i = 0; i < expected.length; i++) {
    const received = await client.next();
    if (Buffer.compare(received, expected[i]) !== 0) expect.fail(`frame ${i} differs`);
  }
}

describe("audio relay over wrangler dev", () => {
  it("relays 1 000 audio frames each way, byte for byte and in order, after handshake and accept", async () => {
    const { alice, bob } = await pair(uniqueRoom());
    const fromAlice = audioFrames(PACKETS_EACH_WAY);
    const fromBob = audioFrames(PACKETS_EACH_WAY);
    for (let i = 0; i < PACKETS_EACH_WAY; i++) {
      alice.send(fromAlice[i]);
      bob.send(fromBob[i]);
    }
    await Promise.all([receiveAll(bob, fromAlice), receiveAll(alice, fromBob)]);
  });

  it("forwards a drop to the other client", async () => {
    const { alice, bob } = await pair(uniqueRoom());
    const drop = encode({ type: AudioMessageType.Drop, optional: new Uint8Array([1, 2]) });
    alice.send(drop);
    expect(await bob.next()).toEqual(drop);
  });

  it("sends a drop to the other client when one disconnects", async () => {
    const { alice, bob } = await pair(uniqueRoom());
    alice.ws.close(1000);
    expect(await bob.next()).toEqual(encode({ type: AudioMessageType.Drop, optional: EMPTY }));
  });

  it("closes a client that sends a text frame with 1003", async () => {
    const { alice } = await pair(uniqueRoom());
    alice.ws.send("hello");
    expect((await alice.closed).code).toBe(1003);
  });

  it("forwards the callee's reject to the handshaking client, byte for byte", async () => {
    const { alice, bob } = await ring(uniqueRoom());
    const reject = encode({ type: AudioMessageType.Reject, optional: new Uint8Array([7, 8, 9]) });
    bob.send(reject);
    expect(await alice.next()).toEqual(reject);
  });

  it("closes a client whose Length field disagrees with its message with 1002 and a reason", async () => {
    const { alice } = await pair(uniqueRoom());
    alice.send(withLength(encode({ type: AudioMessageType.Data, data: randomBytes(SAMPLES_BYTES) }), SAMPLES_BYTES + 7));
    const closed = await alice.closed;
    expect(closed.code).toBe(1002);
    expect(closed.reason).toMatch(/Length/);
  });

  it("sends a drop to the peer of a client closed for a wrong Length field", async () => {
    const { alice, bob } = await pair(uniqueRoom());
    alice.send(withLength(encode({ type: AudioMessageType.Data, data: randomBytes(SAMPLES_BYTES) }), SAMPLES_BYTES + 7));
    expect(await bob.next()).toEqual(encode({ type: AudioMessageType.Drop, optional: EMPTY }));
  });

  it("closes a client that sends a well-formed frame of 65 537 bytes (64 KiB + 1) with 1009", async () => {
    const { alice } = await pair(uniqueRoom());
    const oversize = encode({ type: AudioMessageType.Data, data: randomBytes(65_536 - 6 + 1) });
    expect(oversize.length).toBe(65_537);
    alice.send(oversize);
    expect((await alice.closed).code).toBe(1009);
  });

  it("refuses an upgrade without a token with 401", async () => {
    const res = await fetch(`${baseUrl}/audio/${uniqueRoom()}`);
    expect(res.status).toBe(401);
  });
});
