// The messages a door and the objects exchange over their WebSockets (JSON text frames). A door
// following a call holds one socket to its CallObject; a door waiting for a call holds one to the
// HostObject of each identity it answers for. Objects push; doors ask with numbered requests.
import type { Code } from "@connectrpc/connect";
import type { IceCandidate, Party, Signal } from "../model/call-model";

/** Object → door on a call socket. */
export type CallPush =
  /** A signal for this side, numbered: a door reconnecting passes the next seq it expects. */
  | { seq: number; signal: Signal }
  /** Nothing more will arrive for this side: its stream may end. `over`: the call has ended
   * (else only the other side is done, and this side may still be talking). */
  | { end: true; over: boolean }
  /** A deadline of the call this door serves with its own clock: at `wake` it sends `tick` (null:
   * none now). The rules stay the object's: a tick before anything is due changes nothing. */
  | { wake: number | null }
  /** The answer to the door's request `reply`. */
  | { reply: number; ok: true }
  | { reply: number; ok: false; code: Code; message: string };

/** What a party says to its call: over its socket, or by RPC (`CallObject.act`) from a door that
 * follows the call without one (Viam CallUpdate, a SIP account, the HTTP hang-up). */
export type CallAction =
  | { op: "answer"; sdp: string }
  /** `index`: the candidates this side sent before this one, so a resent one is applied once. */
  | { op: "candidate"; candidate: IceCandidate; index?: number }
  | { op: "done" }
  | { op: "fail"; code: Code; message: string }
  | { op: "hangup" };

/** Door → object on a call socket: what the side says, each answered by a `reply`. */
export type CallRequest = { id: number } & (
  | CallAction
  /** The door's clock reached the `wake` time the object gave it. */
  | { op: "tick" });

/**
 * The caller's socket is opened through the host's object (`?start=1&call=ID&side=caller&identity=I`
 * with the call in this header, URI-encoded JSON of StartCall): the host's object forwards the
 * upgrade to the call's object, which creates the call from it, and rings the host once the call
 * exists. The call's object is thereby created by the host's object, so Cloudflare places it beside
 * the host, and the offer travels on the first request: one crossing from caller to host, one back
 * for the answer (docs/performance.md, the global case).
 */
export const START_HEADER = "x-call-start";

/** The value of START_HEADER for `call` (header values carry no CR/LF, which SDPs are full of). */
export function encodeStartCall(call: StartCall): string {
  return encodeURIComponent(JSON.stringify(call));
}

/** The call in START_HEADER, or undefined when it holds none. */
export function decodeStartCall(value: string | null): StartCall | undefined {
  try {
    const call = JSON.parse(decodeURIComponent(value ?? "")) as StartCall;
    return typeof call === "object" && call !== null ? call : undefined;
  } catch {
    return undefined;
  }
}

export interface StartCall {
  host: string;
  caller: Party;
  sdp: string;
  disableTrickle: boolean;
  /** Absolute ms; the answer must arrive before it. */
  deadline: number;
  /** Door-specific data that travels with the call (a SIP call's headers). */
  meta?: Record<string, string>;
}

/** Object → door on a host socket: the call this answerer is to take. */
export interface HostPush {
  call: string;
}

/** Door → object on a host socket: the call handed out was not taken (claimed elsewhere, gone). */
export interface HostRequest {
  op: "free";
}

/** Close codes doors and objects use on these sockets, beside 1000 (finished). */
export const SPINE_CLOSE = {
  /** The door's client went away mid-stream: the call ends for the other side at once. */
  abandoned: 4000,
  /** The answerer took a call from another host: a call this host handed it goes back in line. */
  elsewhere: 4001,
  /** A newer socket of the same side replaced this one. */
  replaced: 4002,
  /** The object refused a request on the socket that it cannot carry on from. */
  refused: 4003,
} as const;
