// worker/object-upgrade.ts: what a Durable Object sees of a client's upgrade a door forwards.
import { describe, expect, it } from "vitest";
import { forwardUpgrade } from "../worker/object-upgrade";

/** Forwards `request` to a stand-in object and returns the request the object got. */
async function forwarded(request: Request, vouched: Record<string, string>): Promise<Request> {
  let seen: Request | undefined;
  await forwardUpgrade(request, { fetch: async (r) => { seen = r; return new Response(null, { status: 204 }); } }, vouched);
  return seen!;
}

const upgrade = (url: string, headers: Record<string, string> = {}) =>
  new Request(url, { headers: { upgrade: "websocket", ...headers } });

describe("forwardUpgrade", () => {
  it("sets the header the door vouches for over the one a client sent", async () => {
    const seen = await forwarded(upgrade("https://edge.example/audio/r1", { "x-audio-identity": "mallory" }), { "x-audio-identity": "alice" });
    expect(seen.headers.get("x-audio-identity")).toBe("alice");
  });

  it("keeps the token from the object: no authorization header, no access_token parameter", async () => {
    const seen = await forwarded(upgrade("https://edge.example/rtc?access_token=secret&auto_subscribe=1", { authorization: "Bearer secret" }), {});
    expect(seen.headers.has("authorization")).toBe(false);
    expect(new URL(seen.url).searchParams.has("access_token")).toBe(false);
    expect(new URL(seen.url).searchParams.get("auto_subscribe")).toBe("1");
  });

  it("passes the upgrade and the client's other headers on", async () => {
    const seen = await forwarded(upgrade("https://edge.example/audio/r1", { "sec-websocket-protocol": "seed-003" }), {});
    expect(seen.headers.get("upgrade")).toBe("websocket");
    expect(seen.headers.get("sec-websocket-protocol")).toBe("seed-003");
    expect(new URL(seen.url).pathname).toBe("/audio/r1");
  });
});
