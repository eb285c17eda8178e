// The unmodified Viam TypeScript SDK (0.61.1) dials a Node answering host through our
// signaling server, and bytes flow both ways over WebRTC data channels.
//
// 0.61.1 does not export its low-level dialWebRTC, so the SDK is driven through its public
// RobotClient.dial({ host, signalingAddress, credentials }), which runs exactly that dial:
// OptionalWebRTCConfig, Call, one CallUpdate per candidate, done. It resolves once the
// negotiated `data` channel is open and the Call stream has ended. (createRobotClient is the
// same dial plus `isConnected()`, which demands iceConnectionState === "connected"; libwebrtc
// can already report "completed" for the controlling caller, which would fail spuriously.)
//
// The SDK owns the `data` channel (it parses every message as gRPC-over-datachannel), so raw
// bytes go over a channel the test opens on the SDK's peer connection; the host echoes them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startViamHostAnswerer, wrtc, type ViamHostAnswerer } from "./viam-host-answerer";
import { baseUrl, tokenFor } from "./server";


type Sdk = typeof import("@viamrobotics/sdk");

const ECHO_PREFIX = "echo:";

// The SDK constructs these as globals at dial time; set them before it is even loaded.
Object.assign(globalThis, {
  RTCPeerConnection: wrtc.RTCPeerConnection,
  RTCSessionDescription: wrtc.RTCSessionDescription,
  RTCIceCandidate: wrtc.RTCIceCandidate,
});
let sdk: Sdk;

const token = (sub: string) => tokenFor(sub);
const uniqueName = (role: string) => `viam-e2e-${role}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

const dial = async (host: string) =>
  new sdk.RobotClient().dial({
    host,
    signalingAddress: baseUrl,
    credentials: { type: "access-token", payload: await token(uniqueName("caller")) },
    noReconnect: true,
    disableSessions: true,
    dialTimeout: 15_000,
  });

/** The SDK's WebRTC error: RobotClient.dial wraps it as cause[0] of "Failed to connect via all methods"
 * (after WebRTC it tries direct gRPC, which refuses hosts without "local" in the name). */
const webrtcError = (err: unknown): unknown => {
  const cause = (err as { cause?: unknown }).cause;
  return Array.isArray(cause) ? cause[0] : err;
};
const isNotFound = (err: unknown) => {
  const e = webrtcError(err);
  return e instanceof sdk.ConnectError && e.code === sdk.Code.NotFound;
};

/** An Answer stream is registered some milliseconds after it is opened and nothing signals it
 * (response headers only come with the first message), so dial until the host is found. */
async function dialWhenAnswering(host: string, withinMs = 5_000) {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await dial(host);
    } catch (err) {
      if (!isNotFound(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const opened = (ch: RTCDataChannel) =>
  new Promise<void>((resolve, reject) => {
    if (ch.readyState === "open") return resolve();
    ch.addEventListener("open", () => resolve());
    ch.addEventListener("error", () => reject(new Error(`channel ${ch.label} failed`)));
  });

const nextMessage = (ch: RTCDataChannel) =>
  new Promise<Uint8Array>((resolve) =>
    ch.addEventListener("message", (ev: MessageEvent) => resolve(new Uint8Array(ev.data as ArrayBuffer)), { once: true }),
  );

const withPrefix = (bytes: Uint8Array) => new Uint8Array([...new TextEncoder().encode(ECHO_PREFIX), ...bytes]);

describe("Viam TypeScript SDK against the signaling server", () => {
  let answerer: ViamHostAnswerer | undefined;

  beforeAll(async () => {
    sdk = await import("@viamrobotics/sdk");
  });

  afterAll(async () => {
    await answerer?.close();
  });

  it("dials a host through the server and exchanges bytes over WebRTC", { timeout: 60_000 }, async () => {
    const host = uniqueName("host");
    answerer = startViamHostAnswerer({ baseUrl, host, token: await token(host), echoPrefix: ECHO_PREFIX });

    const client = await dialWhenAnswering(host);
    try {
      const pc = client.peerConnection!;
      expect(pc.connectionState).toBe("connected");
      expect(["connected", "completed"]).toContain(pc.iceConnectionState);
      const call = await answerer.nextCall();
      await call.dataOpen; // the SDK resolved on its side of `data`; the host side is open too

      const channel = pc.createDataChannel("echo");
      channel.binaryType = "arraybuffer";
      await opened(channel);

      for (const payload of [
        new Uint8Array([0, 1, 2, 127, 128, 254, 255]),
        new TextEncoder().encode("hello from the Viam SDK"),
        Uint8Array.from({ length: 4096 }, (_, i) => (i * 31) & 0xff),
      ]) {
        const reply = nextMessage(channel);
        channel.send(payload);
        expect(await reply).toEqual(withPrefix(payload)); // host -> caller
        expect(call.received.at(-1)).toEqual(["echo", payload]); // caller -> host, exact bytes
      }
      channel.close();
    } finally {
      await client.disconnect();
    }
  });

  it("fails fast with not_found when no Answer stream is open for the host", { timeout: 30_000 }, async () => {
    const started = Date.now();
    const err = await dial(uniqueName("offline")).then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;

    expect(err).toBeDefined();
    const cause = webrtcError(err);
    expect(cause).toBeInstanceOf(sdk.ConnectError);
    expect((cause as InstanceType<Sdk["ConnectError"]>).code).toBe(sdk.Code.NotFound);
    expect(elapsed).toBeLessThan(3_000); // not the 10 s offer deadline
  });
});
