import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { verifyIdentity } from "../worker/auth";
import { TEST_AUTH_SECRET } from "./test-secret";
import { tokenFor } from "./tokens";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("bearer tokens, verified once per isolate", () => {
  it("refuses a token it verified before once the token expires", async () => {
    const token = await tokenFor("alice", { ttlSeconds: 1 });
    expect(await verifyIdentity(token, TEST_AUTH_SECRET)).toEqual({ ok: true, value: "alice" });
    expect(await verifyIdentity(token, TEST_AUTH_SECRET)).toEqual({ ok: true, value: "alice" });
    // exp is whole seconds: at most 2 s from now the token is past it.
    await sleep(2_100);
    expect(await verifyIdentity(token, TEST_AUTH_SECRET)).toMatchObject({ ok: false, code: Code.Unauthenticated });
  });

  it("does not take a token verified with one secret for valid under another", async () => {
    const token = await tokenFor("alice");
    expect(await verifyIdentity(token, TEST_AUTH_SECRET)).toEqual({ ok: true, value: "alice" });
    expect(await verifyIdentity(token, "a-rotated-secret")).toMatchObject({ ok: false, code: Code.Unauthenticated });
  });

  it("refuses a token whose signature was altered after the same token was accepted", async () => {
    const token = await tokenFor("alice");
    expect((await verifyIdentity(token, TEST_AUTH_SECRET)).ok).toBe(true);
    // Not the last character: its low bits are base64url padding, and changing only those (A to B)
    // leaves the signature's bytes as they were.
    const at = token.length - 10;
    const altered = token.slice(0, at) + (token[at] === "A" ? "Z" : "A") + token.slice(at + 1);
    expect(await verifyIdentity(altered, TEST_AUTH_SECRET)).toMatchObject({ ok: false, code: Code.Unauthenticated });
  });
});
