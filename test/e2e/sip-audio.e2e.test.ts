// End to end through `wrangler dev`: a SIP account calls another with the generated Connect
// client; the callee's own audio client (the `ws` package) takes the call in the seed-003 relay at
// the `audio-url` its status names, and receives PlayWavFiles' samples byte for byte, in the
// format it negotiated.
import { encodeWaveFromBuffer, SampleFormat as WaveFormat } from "@echogarden/wave-codec";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { SipStatus_StatusType as S } from "../../proto/gen/ondewo/sip/sip_pb";
import { AudioMessageType, decode, encode, SampleFormat, type AudioPacket, type AudioParams } from "../../codecs/audio-codec";
import { baseUrl, tokenFor } from "./server";
import { registerSipAccount, sipClient, waitForSipStatus, type SipClient } from "./sip-clients";


const token = (sub: string) => tokenFor(sub);
const EMPTY = new Uint8Array(0);
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

let seq = 0;

async function accountWithSession(who: string): Promise<{ name: string; sip: SipClient }> {
  const name = `${who}-e2e-${Date.now().toString(36)}-${seq++}`;
  const password = `secret of ${name}`;
  await registerSipAccount(baseUrl, name, password);
  const sip = sipClient(baseUrl, name, password);
  await sip.startSession({ accountName: name, autoAnswerInterval: 0 });
  return { name, sip };
}


const sockets: WebSocket[] = [];
afterEach(() => {
  for (const ws of sockets.splice(0)) ws.close(1000);
});

/** The callee's audio client: joins the room at `audioUrl` and collects what arrives. */
async function joinAudio(audioUrl: string, identity: string) {
  const ws = new WebSocket(audioUrl, { headers: { authorization: `Bearer ${await token(identity)}` } });
  sockets.push(ws);
  const inbox: AudioPacket[] = [];
  let wake: (() => void) | null = null;
  ws.on("message", (message: Buffer) => {
    inbox.push(decode(new Uint8Array(message)));
    wake?.();
  });
  await new Promise<void>((resolve, reject) => { ws.once("open", () => resolve()); ws.once("error", reject); });
  const next = async (timeoutMs = 10_000): Promise<AudioPacket> => {
    const until = Date.now() + timeoutMs;
    while (inbox.length === 0) {
      if (Date.now() > until) throw new Error("no audio packet arrived");
      await new Promise<void>((r) => { wake = r; setTimeout(r, 100); });
      wake = null;
    }
    return inbox.shift()!;
  };
  /** Concatenated data packets until `bytes` have arrived; with the packet count and the time it took. */
  const audio = async (bytes: number, timeoutMs = 15_000) => {
    const parts: Uint8Array[] = [];
    let total = 0;
    const started = Date.now();
    while (total < bytes) {
      const packet = await next(timeoutMs);
      if (packet.type !== AudioMessageType.Data) continue;
      parts.push(packet.data.slice());
      total += packet.data.byteLength;
    }
    const joined = new Uint8Array(total);
    parts.reduce((at, p) => { joined.set(p, at); return at + p.byteLength; }, 0);
    return { bytes: joined, packets: parts.length, ms: Date.now() - started };
  };
  return { send: (p: AudioPacket) => ws.send(encode(p)), next, audio };
}

/** Alice calls bob; bob's client answers in the relay with `answer` (accept or counter-proposal). */
async function connectedCall(answer: "accept" | AudioParams) {
  const alice = await accountWithSession("alice");
  const bob = await accountWithSession("bob");
  await alice.sip.startCall({ calleeId: bob.name, headers: { "x-e2e": "audio" } });
  const ringing = await waitForSipStatus(bob.sip, S.incoming_call_initiated);
  const audioUrl = ringing.headers["audio-url"];
  expect(audioUrl).toBe(`${baseUrl.replace(/^http/, "ws")}/audio/${ringing.headers["call-id"]}`);
  const bobAudio = await joinAudio(audioUrl, bob.name);
  const handshake = await bobAudio.next();
  expect(handshake).toMatchObject({ type: AudioMessageType.Handshake, username: alice.name,
    params: { sampleRate: 16_000, channels: 1, format: SampleFormat.Int16, chunkSize: 320 } });
  if (answer === "accept") bobAudio.send({ type: AudioMessageType.Accept, optional: EMPTY });
  else {
    bobAudio.send({ type: AudioMessageType.CounterProposal, params: answer, optional: EMPTY });
    expect(await bobAudio.next()).toMatchObject({ type: AudioMessageType.Accept });
  }
  await waitForSipStatus(alice.sip, S.outgoing_call_connected);
  await waitForSipStatus(bob.sip, S.incoming_call_connected);
  return { alice, bob, bobAudio };
}

const ramp = (n: number) => new Int16Array(n).map((_, i) => ((i * 1237) % 65536) - 32768);

describe("SIP audio end to end", () => {
  it("delivers a 16-bit WAV to the callee's audio socket byte for byte in 20 ms packets at real-time pace", async () => {
    const { alice, bobAudio } = await connectedCall("accept");
    const samples = ramp(8_000); // 0.5 s at 16 kHz
    await alice.sip.playWavFiles({ wavFiles: [encodeWaveFromBuffer(bytesOf(samples), 16_000, 1, 16, WaveFormat.PCM)] });
    const got = await bobAudio.audio(samples.byteLength);
    expect(got.bytes).toEqual(bytesOf(samples));
    expect(got.packets).toBe(25);
    // 25 packets of 20 ms: the first leaves at once, the last 480 ms later.
    expect(got.ms).toBeGreaterThanOrEqual(400);
  });

  it("converts 16-bit samples to float32 when the callee counter-proposes float32", async () => {
    const params: AudioParams = { sampleRate: 16_000, channels: 1, format: SampleFormat.Float32, chunkSize: 160 };
    const { alice, bobAudio } = await connectedCall(params);
    const samples = ramp(1_600);
    await alice.sip.playWavFiles({ wavFiles: [encodeWaveFromBuffer(bytesOf(samples), 16_000, 1, 16, WaveFormat.PCM)] });
    const got = await bobAudio.audio(samples.length * 4);
    expect(got.bytes).toEqual(bytesOf(Float32Array.from(samples, (v) => v / 32768)));
    expect(got.packets).toBe(10);
  });

  it("converts a 24-bit mono WAV to 32-bit stereo when the callee counter-proposes int32 stereo", async () => {
    const params: AudioParams = { sampleRate: 16_000, channels: 2, format: SampleFormat.Int32, chunkSize: 320 };
    const { alice, bobAudio } = await connectedCall(params);
    const values = Array.from({ length: 640 }, (_, i) => ((i * 40_503) % 16_777_216) - 8_388_608);
    const pcm24 = new Uint8Array(values.length * 3);
    values.forEach((v, i) => { pcm24[i * 3] = v & 0xff; pcm24[i * 3 + 1] = (v >> 8) & 0xff; pcm24[i * 3 + 2] = (v >> 16) & 0xff; });
    await alice.sip.playWavFiles({ wavFiles: [encodeWaveFromBuffer(pcm24, 16_000, 1, 24, WaveFormat.PCM)] });
    const got = await bobAudio.audio(values.length * 8);
    expect(got.bytes).toEqual(bytesOf(Int32Array.from(values.flatMap((v) => [v * 256, v * 256]))));
  });

  it("plays several WAVs in order and sends nothing while muted", async () => {
    const { alice, bobAudio } = await connectedCall("accept");
    const first = ramp(3_200);
    const second = ramp(320).map((v) => -v);
    await alice.sip.playWavFiles({ wavFiles: [
      encodeWaveFromBuffer(bytesOf(first), 16_000, 1, 16, WaveFormat.PCM),
      encodeWaveFromBuffer(bytesOf(second), 16_000, 1, 16, WaveFormat.PCM),
    ] });
    const got = await bobAudio.audio(first.byteLength + second.byteLength);
    expect(got.bytes).toEqual(new Uint8Array([...bytesOf(first), ...bytesOf(second)]));

    await alice.sip.mute({});
    await alice.sip.playWavFiles({ wavFiles: [encodeWaveFromBuffer(bytesOf(ramp(1_600)), 16_000, 1, 16, WaveFormat.PCM)] });
    await expect(bobAudio.audio(1, 600)).rejects.toThrow("no audio packet arrived");
    await alice.sip.unMute({});
    const after = ramp(320);
    await alice.sip.playWavFiles({ wavFiles: [encodeWaveFromBuffer(bytesOf(after), 16_000, 1, 16, WaveFormat.PCM)] });
    expect((await bobAudio.audio(after.byteLength)).bytes).toEqual(bytesOf(after));
  });

  it("ends the call on both sides and drops the callee's audio when the caller hangs up", async () => {
    const { alice, bob, bobAudio } = await connectedCall("accept");
    await alice.sip.endCall({ hardHangup: true });
    expect(await bobAudio.next()).toMatchObject({ type: AudioMessageType.Drop });
    await waitForSipStatus(bob.sip, S.incoming_call_finished);
  });

  it("ends the call on both sides when the callee drops the audio", async () => {
    const { alice, bob, bobAudio } = await connectedCall("accept");
    bobAudio.send({ type: AudioMessageType.Drop, optional: EMPTY });
    await waitForSipStatus(alice.sip, S.outgoing_call_finished);
    await waitForSipStatus(bob.sip, S.incoming_call_finished);
  });
});
