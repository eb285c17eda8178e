import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { answeredVoiceCall, hangUpClients } from "./door-clients";
import { tokenFor } from "./tokens";



async function request(method: "GET" | "POST", path: string, identity?: string): Promise<Response> {
  const headers: Record<string, string> = identity ? { authorization: `Bearer ${await tokenFor(identity)}` } : {};
  return exports.default.fetch(`http://worker.test${path}`, { method, headers });
}

const statuses = (body: unknown) => (body as { history: Array<{ status: string; side?: string }> }).history
  .map((e) => `${e.status}:${e.side ?? ""}`);

describe("GET /calls/:id/history", () => {
  it("shows the caller and the callee who is in the call and every status so far", async () => {
    const call = await answeredVoiceCall();
    const { id, caller, callee } = call;
    for (const identity of [caller, callee]) {
      const res = await request("GET", `/calls/${id}/history`, identity);
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toMatchObject({ id, phase: "answered", caller: { identity: caller, door: "viam" },
        callee: { identity: callee, door: "voice" } });
      expect(statuses(body)).toEqual(["offered:caller", "claimed:callee", "answered:callee"]);
    }
    await hangUpClients(call);
  });

  it("refuses anyone who is neither the caller nor the callee with 403 permission_denied", async () => {
    const call = await answeredVoiceCall();
    const res = await request("GET", `/calls/${call.id}/history`, "mallory");
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "permission_denied" });
    await hangUpClients(call);
  });

  it("refuses a request without a token with 401 unauthenticated", async () => {
    const call = await answeredVoiceCall();
    const res = await request("GET", `/calls/${call.id}/history`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "unauthenticated" });
    await hangUpClients(call);
  });

  it("answers 404 for a call that does not exist and 400 for a path that is no call id", async () => {
    expect((await request("GET", `/calls/${crypto.randomUUID()}/history`, "alice")).status).toBe(404);
    const res = await request("GET", "/calls/not-a-call/history", "alice");
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_argument" });
  });
});

describe("POST /calls/:id/hangup", () => {
  it("ends an exchanged call as the callee's hang-up, seen in the caller's history", async () => {
    const { id, caller, callee, viam, voice } = await answeredVoiceCall();
    voice.close();
    expect((await viam.next()).done).toBe(true);
    expect((await request("POST", `/calls/${id}/hangup`, callee)).status).toBe(204);
    const body = await (await request("GET", `/calls/${id}/history`, caller)).json();
    expect(body).toMatchObject({ phase: "ended" });
    expect(statuses(body).at(-1)).toBe("hung_up:callee");
  });

  it("ends the callee's Voice stream with OK when the caller hangs up mid-exchange", async () => {
    const call = await answeredVoiceCall();
    const { id, caller, voice } = call;
    expect((await request("POST", `/calls/${id}/hangup`, caller)).status).toBe(204);
    // The stream ends (null) rather than failing: a hang-up ends it with OK.
    while ((await voice.next()) !== null) { /* signals before the end */ }
    await hangUpClients(call);
  });

  it("answers 204 again for a call that has already ended, changing nothing", async () => {
    const call = await answeredVoiceCall();
    const { id, caller, callee } = call;
    expect((await request("POST", `/calls/${id}/hangup`, caller)).status).toBe(204);
    expect((await request("POST", `/calls/${id}/hangup`, callee)).status).toBe(204);
    const body = await (await request("GET", `/calls/${id}/history`, callee)).json();
    expect(statuses(body).filter((s) => s.startsWith("hung_up"))).toEqual(["hung_up:caller"]);
    await hangUpClients(call);
  });

  it("refuses anyone who is neither the caller nor the callee with 403", async () => {
    const call = await answeredVoiceCall();
    expect((await request("POST", `/calls/${call.id}/hangup`, "mallory")).status).toBe(403);
    await hangUpClients(call);
  });
});
