// worker/http-errors.ts: a failure as an HTTP answer, the same on every plain-HTTP door.
import { Code } from "@connectrpc/connect";
import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { failure } from "../model/result";
import { httpError, type ErrorBody } from "../worker/http-errors";

function answer(code: Code, message: string, body?: ErrorBody): Promise<Response> {
  const app = new Hono();
  app.get("/calls/:id", (c) => httpError(c, failure(code, message), body));
  return Promise.resolve(app.request("/calls/x"));
}

afterEach(() => vi.restoreAllMocks());

describe("httpError", () => {
  // The Connect protocol's table (connectrpc.com/docs/protocol#error-codes), written out.
  const table: Array<[Code, string, number]> = [
    [Code.Canceled, "canceled", 499],
    [Code.Unknown, "unknown", 500],
    [Code.InvalidArgument, "invalid_argument", 400],
    [Code.DeadlineExceeded, "deadline_exceeded", 504],
    [Code.NotFound, "not_found", 404],
    [Code.AlreadyExists, "already_exists", 409],
    [Code.PermissionDenied, "permission_denied", 403],
    [Code.ResourceExhausted, "resource_exhausted", 429],
    [Code.FailedPrecondition, "failed_precondition", 400],
    [Code.Aborted, "aborted", 409],
    [Code.OutOfRange, "out_of_range", 400],
    [Code.Unimplemented, "unimplemented", 501],
    [Code.Unavailable, "unavailable", 503],
    [Code.DataLoss, "data_loss", 500],
    [Code.Unauthenticated, "unauthenticated", 401],
  ];

  it.each(table)("answers code %i as %s with HTTP %i and the message", async (code, name, status) => {
    const res = await answer(code, "why it failed");
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual({ code: name, message: "why it failed" });
  });

  it("answers internal with HTTP 500 and no detail, and logs the detail with the path", async () => {
    const log = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const res = await answer(Code.Internal, "AUTH_SECRET is not set");
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ code: "internal", message: "internal error" });
    expect(log).toHaveBeenCalledWith("request failed", { method: "GET", path: "/calls/x", message: "AUTH_SECRET is not set" });
  });

  it("answers with the bare message as text when asked, as livekit-server does", async () => {
    const res = await answer(Code.PermissionDenied, "hidden participants are not possible", "text");
    expect(res.status).toBe(403);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await res.text()).toBe("hidden participants are not possible");
  });

  it("hides an internal failure's detail in text too", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const res = await answer(Code.Internal, "LIVEKIT_API_SECRET is not configured", "text");
    expect(res.status).toBe(500);
    expect(await res.text()).toBe("internal error");
  });
});
