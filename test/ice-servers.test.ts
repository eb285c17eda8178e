import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SignalingService } from "../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { app } from "../worker/app";
import { clientFor } from "./connect-clients";
import { tokenFor } from "./tokens";

const STUN = "stun:stun.l.google.com:19302";
const TURN_SECRET = "turn-rest-secret-for-vitest";
const TURN_URLS = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"];

/** The Worker's bindings with extra vars, as `wrangler dev --var` or `[vars]` would set them.
 * (Defined, not assigned: an assignment would go through to the shared `env` of every test.) */
function envWith(vars: Partial<Record<"TURN_SECRET" | "TURN_URLS", string>>): Env {
  return Object.create(env, Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, { value: v }]))) as Env;
}

async function iceServersOf(workerEnv: Env, identity: string) {
  const client = clientFor(SignalingService,
    { authorization: `Bearer ${await tokenFor(identity)}`, "rpc-host": "bob" },
    "connect", (req) => app.fetch(req, workerEnv));
  const res = await client.optionalWebRTCConfig({});
  return res.config!.additionalIceServers;
}

/** coturn's check of a TURN REST credential, written here apart from the Worker's code. */
async function verifiesWithHmacSha1(secret: string, username: string, credential: string): Promise<boolean> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-1" }, false, ["verify"]);
  const mac = Uint8Array.from(atob(credential), (c) => c.charCodeAt(0));
  return crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode(username));
}

describe("ICE servers in OptionalWebRTCConfig", () => {
  it("adds TURN with a username that expires an hour (3 600 s) from now and names the identity", async () => {
    const before = Math.floor(Date.now() / 1000);
    const servers = await iceServersOf(envWith({ TURN_SECRET, TURN_URLS: TURN_URLS.join(", ") }), "alice@example.org");
    const after = Math.floor(Date.now() / 1000);

    expect(servers).toHaveLength(2);
    expect(servers[0].urls).toEqual([STUN]);
    expect(servers[1].urls).toEqual(TURN_URLS);
    const [expiry, ...identity] = servers[1].username.split(":");
    expect(identity.join(":")).toBe("alice@example.org");
    expect(Number(expiry)).toBeGreaterThanOrEqual(before + 3600);
    expect(Number(expiry)).toBeLessThanOrEqual(after + 3600);
  });

  it("signs the TURN username with HMAC-SHA1 of TURN_SECRET, base64-encoded", async () => {
    const servers = await iceServersOf(envWith({ TURN_SECRET, TURN_URLS: TURN_URLS[0] }), "alice");
    const { username, credential } = servers[1];
    expect(await verifiesWithHmacSha1(TURN_SECRET, username, credential)).toBe(true);
    expect(await verifiesWithHmacSha1("another-secret", username, credential)).toBe(false);
  });

  it("returns only STUN, without credentials, unless both TURN_SECRET and TURN_URLS are set", async () => {
    for (const vars of [{}, { TURN_SECRET }, { TURN_URLS: TURN_URLS[0] }]) {
      const servers = await iceServersOf(envWith(vars), "alice");
      expect(servers.map(({ urls, username, credential }) => ({ urls, username, credential })))
        .toEqual([{ urls: [STUN], username: "", credential: "" }]);
    }
  });
});
