import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("GET /healthz", () => {
  it("returns the version and the services served", async () => {
    const res = await exports.default.fetch("http://w/healthz");
    expect(res.status).toBe(200);
    const body = await res.json<{ version: string; services: string[] }>();
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.services).toContain("proto.rpc.webrtc.v1.SignalingService");
  });
});
