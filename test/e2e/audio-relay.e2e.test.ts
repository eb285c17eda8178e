// Two Node clients (the `ws` package) talk seed-003 binary audio through `wrangler dev`:
// real sockets, real hibernatable Durable Object, the same bytes in and out.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { AudioMessageType, encode, SampleFormat, type AudioPacket } from "../../worker/audio-codec";
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
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (message: Buffer) => {
      const wake = this.waiting;
      this.waiting = null;
      if (wake) wake(message);
      else this.inbox.push(message);
    });
    this.closed = new Promise((resolve) => ws.on("close", (code: number) => resolve(code)));
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

async function pair(room: string) {
  const alice = await NodeAudioClient.join(room, "alice");
  const bob = await NodeAudioClient.join(room, "bob");
  alice.send({ type: AudioMessageType.Handshake, username: "bob", optional: EMPTY,
    params: { sampleRate: 48_000, channels: 1, format: SampleFormat.Float32, chunkSize: 480 } });
  const ring = await bob.next();
  expect(new TextDecoder().decode(ring.subarray(19, 24))).toBe("alice");
  bob.send({ type: AudioMessageType.Accept, optional: EMPTY });
  expect(await alice.next()).toEqual(encode({ type: AudioMessageType.Accept, optional: EMPTY }));
  return { alice, bob };
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
    expect(await alice.closed).toBe(1003);
  });

  it("refuses an upgrade without a token with 401", async () => {
    const res = await fetch(`${baseUrl}/audio/${uniqueRoom()}`);
    expect(res.status).toBe(401);
  });
});
