import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { tokenFor } from "./tokens";

async function upgrade(path: string) {
  const res = await exports.default.fetch(`http://worker.test${path}`, { headers: { upgrade: "websocket" } });
  const socket = res.webSocket;
  if (!socket) return { res, socket: null, closed: Promise.resolve({ code: 0, reason: "" }) };
  socket.accept();
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
  return { res, socket, closed };
}

describe("Connect over WebSocket", () => {
  it("answers 404 for a path that is not a streaming method", async () => {
    const res = await exports.default.fetch("http://worker.test/ws/proto.rpc.webrtc.v1.SignalingService/CallUpdate",
      { headers: { upgrade: "websocket" } });
    expect(res.status).toBe(404);
  });

  it("answers 426 to a request that is not a WebSocket upgrade", async () => {
    const res = await exports.default.fetch("http://worker.test/ws/protocol.voice.v1.VoiceService/Connect");
    expect(res.status).toBe(426);
  });

  it("closes with 1003 when the client sends a text frame", async () => {
    const token = await tokenFor("bob");
    const { socket, closed } = await upgrade(`/ws/protocol.voice.v1.VoiceService/Connect?access_token=${token}`);
    socket!.send("hello");
    expect((await closed).code).toBe(1003);
  });

  it("closes with 1002 when a binary message is shorter than an envelope header", async () => {
    const token = await tokenFor("bob");
    const { socket, closed } = await upgrade(`/ws/protocol.voice.v1.VoiceService/Connect?access_token=${token}`);
    socket!.send(new Uint8Array([0, 0]));
    expect((await closed).code).toBe(1002);
  });

  it("ends the stream with an unauthenticated end-stream envelope when the token is missing", async () => {
    const { socket, closed } = await upgrade("/ws/protocol.voice.v1.VoiceService/Connect");
    const first = new Promise<Uint8Array>((resolve) =>
      socket!.addEventListener("message", async (e) => {
        const data = e.data as ArrayBuffer | Blob;
        resolve(new Uint8Array(data instanceof Blob ? await data.arrayBuffer() : data));
      }));
    const envelope = await first;
    expect(envelope[0] & 0b10).toBe(0b10);
    const end = JSON.parse(new TextDecoder().decode(envelope.subarray(5)));
    expect(end.error.code).toBe("unauthenticated");
    expect((await closed).code).toBe(1000);
  });
});
