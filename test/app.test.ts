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
