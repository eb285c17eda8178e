import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { tokenFor } from "./tokens";

const ORIGIN = "https://app.viam.example";
const CALL = "http://worker.test/proto.rpc.webrtc.v1.SignalingService/Call";
/** What the Viam SDK's gRPC-web transport sends from a browser, besides the simple headers. */
const SDK_HEADERS = ["authorization", "rpc-host", "content-type", "x-grpc-web", "x-user-agent"];

const listOf = (header: string | null) => (header ?? "").split(",").map((h) => h.trim().toLowerCase()).filter(Boolean);

function preflight(): Promise<Response> {
  return exports.default.fetch(CALL, {
    method: "OPTIONS",
    headers: {
      origin: ORIGIN,
      "access-control-request-method": "POST",
      "access-control-request-headers": SDK_HEADERS.join(", "),
    },
  });
}

describe("CORS for the Viam SDK in browsers", () => {
  it("answers a preflight for Call with no content, for any origin", async () => {
    const res = await preflight();
    expect(res.status).toBe(204);
    // The SDK sends its bearer token in a header and no cookie: "*" serves every page.
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("does not allow credentials in a preflight from an origin not configured for them", async () => {
    const res = await preflight();
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("allows POST and every header the SDK sends in a preflight", async () => {
    const res = await preflight();
    expect(listOf(res.headers.get("access-control-allow-methods"))).toContain("post");
    expect(listOf(res.headers.get("access-control-allow-headers"))).toEqual(expect.arrayContaining(SDK_HEADERS));
  });

  it("exposes grpc-status and grpc-message on a gRPC-web response to a browser origin", async () => {
    // A Call without an SDP (one uncompressed frame of 0 bytes): the browser app must read its status.
    const res = await exports.default.fetch(CALL, {
      method: "POST",
      headers: {
        origin: ORIGIN, "content-type": "application/grpc-web+proto", "x-grpc-web": "1",
        authorization: `Bearer ${await tokenFor("alice")}`, "rpc-host": "bob",
      },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    await res.arrayBuffer();
    expect(res.headers.get("content-type")).toMatch(/^application\/grpc-web/);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(listOf(res.headers.get("access-control-expose-headers"))).toEqual(expect.arrayContaining(["grpc-status", "grpc-message"]));
  });
});

describe("Connect calls without an Origin (not from a page) go straight to their handler", () => {
  const callUpdate = (headers: Record<string, string>) => exports.default.fetch(
    "http://worker.test/proto.rpc.webrtc.v1.SignalingService/CallUpdate",
    { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ uuid: crypto.randomUUID(), done: true }) });

  it("answers the same as through the app, without the CORS headers only a browser reads", async () => {
    const token = await tokenFor("alice");
    const direct = await callUpdate({ authorization: `Bearer ${token}`, "rpc-host": "bob" });
    const fromPage = await callUpdate({ authorization: `Bearer ${token}`, "rpc-host": "bob", origin: ORIGIN });
    expect(direct.status).toBe(404);
    expect(await direct.json()).toMatchObject({ code: "not_found" });
    expect(direct.headers.get("access-control-allow-origin")).toBeNull();
    expect(fromPage.status).toBe(404);
    expect(await fromPage.json()).toMatchObject({ code: "not_found" });
    expect(fromPage.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("still refuses a call without a token, and leaves other paths to the app", async () => {
    expect((await callUpdate({ "rpc-host": "bob" })).status).toBe(401);
    expect((await exports.default.fetch("http://worker.test/healthz")).status).toBe(200);
  });
});

