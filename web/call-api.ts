// The Worker's plain HTTP routes the page uses besides its Connect clients: dev tokens
// (worker/dev-tokens.ts) and one call's status history and hang-up (worker/call-http.ts).

export type Side = "caller" | "callee";

/** One status of a call, as the call object records it (durable-objects/call.ts). */
export interface HistoryEntry {
  at: number;
  status: string;
  side?: Side;
  detail?: string;
}

export interface CallRecord {
  id: string;
  phase: "offered" | "claimed" | "answered" | "exchanged" | "ended";
  caller: { identity: string; door: string };
  callee: { identity: string; door: string } | null;
  history: HistoryEntry[];
}

/** A refusal from the Worker, with Connect's code name ("not_found", "permission_denied", …). */
export class ApiError extends Error {
  constructor(readonly code: string, message: string, readonly status: number) {
    super(message);
  }
}

async function refusalOf(res: Response): Promise<ApiError> {
  const body = await res.json().catch(() => null) as { code?: string; message?: string } | null;
  return new ApiError(body?.code ?? `http_${res.status}`, body?.message ?? res.statusText, res.status);
}

/** A bearer token for `identity` from `POST /dev/token` (served only where DEV_TOKENS=1). */
export async function devToken(identity: string): Promise<string> {
  const res = await fetch("/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ identity }),
  });
  if (res.status === 404) {
    throw new ApiError("not_found", "This server hands out no dev tokens (DEV_TOKENS is not \"1\"). "
      + "Paste a token under \"Use my own token\" instead (npm run token -- <identity>).", 404);
  }
  if (!res.ok) throw await refusalOf(res);
  return ((await res.json()) as { token: string }).token;
}

export async function callRecord(callId: string, token: string, signal?: AbortSignal): Promise<CallRecord> {
  const res = await fetch(`/calls/${encodeURIComponent(callId)}/history`, {
    headers: { authorization: `Bearer ${token}` }, signal,
  });
  if (!res.ok) throw await refusalOf(res);
  return (await res.json()) as CallRecord;
}

export async function hangUp(callId: string, token: string): Promise<void> {
  const res = await fetch(`/calls/${encodeURIComponent(callId)}/hangup`, {
    method: "POST", headers: { authorization: `Bearer ${token}` },
  });
  if (!res.ok) throw await refusalOf(res);
}

/** The statuses after which a call is over (model/call-model.ts `end`). */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(["failed", "hung_up", "timed_out"]);
