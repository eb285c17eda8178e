// LiveKit access tokens as livekit-server-sdk mints them, verified with hono/jwt.
import { Code } from "@connectrpc/connect";
import { sign } from "hono/jwt";
import { TrackSource } from "livekit-server-sdk";
import { describe, expect, it } from "vitest";
import { TrackSource as WireTrackSource } from "../proto/gen/livekit_models_pb";
import { verifyLiveKitToken } from "../worker/livekit-token";
import { liveKitToken } from "./livekit-fixtures";
import { TEST_LIVEKIT_API_KEY as KEY, TEST_LIVEKIT_API_SECRET as SECRET } from "./test-secret";

const check = (token: string | undefined) => verifyLiveKitToken(token, KEY, SECRET);
const nowS = () => Math.floor(Date.now() / 1000);

describe("livekit tokens: accepted", () => {
  it("accepts an AccessToken and returns its identity, room, name, metadata and attributes", async () => {
    const token = await liveKitToken("alice", "r1", { name: "Alice", metadata: "{\"a\":1}", attributes: { k: "v" } });
    expect(await check(token)).toEqual({ ok: true, value: expect.objectContaining({
      identity: "alice", room: "r1", name: "Alice", metadata: "{\"a\":1}", attributes: { k: "v" },
    }) });
  });

  it("applies livekit-server's defaults to grants the token leaves unset", async () => {
    const result = await check(await liveKitToken("alice", "r1"));
    expect(result.ok && result.value).toMatchObject({
      canPublish: true, canSubscribe: true, canPublishData: true, canUpdateOwnMetadata: false, canPublishSources: [],
    });
  });

  it("defaults canPublishData to canPublish", async () => {
    const result = await check(await liveKitToken("alice", "r1", { grant: { canPublish: false } }));
    expect(result.ok && result.value).toMatchObject({ canPublish: false, canPublishData: false });
  });

  it("reads canPublishSources as AccessToken writes them", async () => {
    const result = await check(await liveKitToken("alice", "r1", { grant: { canPublishSources: [TrackSource.MICROPHONE] } }));
    expect(result.ok && result.value.canPublishSources).toEqual([WireTrackSource.MICROPHONE]);
  });

  it("tolerates an nbf 55 s ahead of the server's clock (within the 60 s leeway)", async () => {
    const token = await sign({ iss: KEY, sub: "alice", nbf: nowS() + 55, exp: nowS() + 600, video: { roomJoin: true, room: "r1" } }, SECRET, "HS256");
    expect((await check(token)).ok).toBe(true);
  });
});

describe("livekit tokens: refused", () => {
  const refusal = async (token: string | undefined) => {
    const result = await check(token);
    if (result.ok) throw new Error("accepted");
    return result;
  };

  it("refuses a missing token as unauthenticated", async () => {
    expect(await refusal(undefined)).toMatchObject({ code: Code.Unauthenticated });
  });

  it("refuses an expired token as unauthenticated", async () => {
    const token = await sign({ iss: KEY, sub: "alice", nbf: nowS() - 120, exp: nowS() - 60, video: { roomJoin: true, room: "r1" } }, SECRET, "HS256");
    expect(await refusal(token)).toMatchObject({ code: Code.Unauthenticated, message: expect.stringContaining("Expired") });
  });

  it("refuses a token signed with another secret", async () => {
    expect(await refusal(await liveKitToken("alice", "r1", { secret: "another-secret-another-secret-123" }))).toMatchObject({ code: Code.Unauthenticated });
  });

  it("refuses a token issued for another API key", async () => {
    expect(await refusal(await liveKitToken("alice", "r1", { key: "other-key" }))).toMatchObject({ code: Code.Unauthenticated, message: "invalid API key" });
  });

  it("refuses a token without exp", async () => {
    const token = await sign({ iss: KEY, sub: "alice", video: { roomJoin: true, room: "r1" } }, SECRET, "HS256");
    expect(await refusal(token)).toMatchObject({ code: Code.Unauthenticated, message: expect.stringContaining("no exp") });
  });

  it("refuses a token whose nbf is 65 s ahead, past the 60 s leeway", async () => {
    const token = await sign({ iss: KEY, sub: "alice", nbf: nowS() + 65, exp: nowS() + 600, video: { roomJoin: true, room: "r1" } }, SECRET, "HS256");
    expect(await refusal(token)).toMatchObject({ code: Code.Unauthenticated });
  });

  it("refuses a token signed with another algorithm", async () => {
    const token = await sign({ iss: KEY, sub: "alice", exp: nowS() + 600, video: { roomJoin: true, room: "r1" } }, SECRET, "HS512");
    expect(await refusal(token)).toMatchObject({ code: Code.Unauthenticated });
  });

  it("refuses a token without roomJoin", async () => {
    expect(await refusal(await liveKitToken("alice", "r1", { grant: { roomJoin: false } }))).toMatchObject({ code: Code.Unauthenticated });
  });

  it("refuses a token without a room", async () => {
    expect(await refusal(await liveKitToken("alice", ""))).toMatchObject({ code: Code.Unauthenticated });
  });

  it("refuses a token without an identity", async () => {
    const token = await sign({ iss: KEY, exp: nowS() + 600, video: { roomJoin: true, room: "r1" } }, SECRET, "HS256");
    expect(await refusal(token)).toMatchObject({ code: Code.Unauthenticated });
  });

  it("refuses canSubscribe=false as permission_denied: a peer connection carries every track", async () => {
    expect(await refusal(await liveKitToken("alice", "r1", { grant: { canSubscribe: false } }))).toMatchObject({ code: Code.PermissionDenied });
  });

  it("refuses a hidden participant as permission_denied", async () => {
    expect(await refusal(await liveKitToken("alice", "r1", { grant: { hidden: true } }))).toMatchObject({ code: Code.PermissionDenied });
  });

  it("reports a missing API secret as internal", async () => {
    expect(await verifyLiveKitToken(await liveKitToken("alice", "r1"), KEY, undefined)).toMatchObject({ ok: false, code: Code.Internal });
  });
});
