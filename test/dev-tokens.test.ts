import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../worker/app";
import { verifyIdentity } from "../worker/auth";
import { TEST_AUTH_SECRET } from "./test-secret";

/** The Worker's bindings with DEV_TOKENS=1, as `wrangler dev --var DEV_TOKENS:1` runs it. (Defined,
 * not assigned: an assignment would go through to the shared `env` and enable the route for all.) */
const devEnv = Object.create(env, { DEV_TOKENS: { value: "1" } }) as Env;

function requestToken(body: unknown): Request {
  return new Request("http://worker.test/dev/token", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
}

describe("POST /dev/token", () => {
  it("answers 404, as for a path that does not exist, unless DEV_TOKENS is 1", async () => {
    const res = await exports.default.fetch(requestToken({ identity: "alice" }));
    expect(res.status).toBe(404);
    expect(await res.text()).toBe(await (await exports.default.fetch("http://worker.test/no-such-path")).text());
  });

  it("signs a token for the identity that the Worker's doors accept, valid for an hour", async () => {
    const res = await app.fetch(requestToken({ identity: "alice@example.org" }), devEnv);
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    expect(await verifyIdentity(token, TEST_AUTH_SECRET)).toEqual({ ok: true, value: "alice@example.org" });
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))) as { exp: number };
    expect(payload.exp - Date.now() / 1000).toBeGreaterThan(3600 - 60);
    expect(payload.exp - Date.now() / 1000).toBeLessThanOrEqual(3600);
  });

  it("refuses an identity outside the name pattern with 400 invalid_argument", async () => {
    for (const body of [{ identity: "has space" }, { identity: "" }, { identity: 42 }, {}, "not an object"]) {
      const res = await app.fetch(requestToken(body), devEnv);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: "invalid_argument" });
    }
  });
});
