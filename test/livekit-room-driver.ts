// Drives the LiveKit room's pure `step` (model/livekit-model.ts) as the room object does, for the
// tests of the room's rules (livekit-model, livekit-pairing, livekit-tracks): one Room keeps the
// state, the clock and the effects of the last event, and small builders make signal requests.
import { create } from "@bufbuild/protobuf";
import { expect } from "vitest";
import { emptyRoom, step, type RoomEffect, type RoomEvent, type RoomState } from "../model/livekit-model";
import { DisconnectReason, TrackSource, TrackType } from "../proto/gen/livekit_models_pb";
import {
  AddTrackRequestSchema, LeaveRequestSchema, PingSchema, SessionDescriptionSchema, SignalTarget, TrickleRequestSchema,
  type SignalRequest, type SignalResponse,
} from "../proto/gen/livekit_rtc_pb";
import type { LiveKitGrant } from "../model/livekit-grant";
import { ANSWER, CANDIDATE, DATA_OFFER, grantFor, MIC_CID, micOffer } from "./livekit-fixtures";

export const ICE = [{ urls: ["stun:stun.example.com:3478"] }];
export const T0 = 1_700_000_000_000;

export type Message = NonNullable<SignalResponse["message"]>;
export type Case = NonNullable<Message["case"]>;
export type ValueOf<C extends Case> = Extract<Message, { case: C }>["value"];

/** Drives `step` like the room object does, keeping the state and the effects of the last event. */
export class Room {
  state: RoomState = emptyRoom();
  effects: RoomEffect[] = [];
  now = T0;
  private ids = 0;

  apply(event: RoomEvent): RoomEffect[] {
    const before = structuredClone(this.state);
    const t = step(this.state, event);
    expect(this.state).toEqual(before); // step never modifies its input
    this.state = t.state;
    this.effects = t.effects;
    return t.effects;
  }

  join(connection: string, grant: LiveKitGrant | string): RoomEffect[] {
    const g = typeof grant === "string" ? grantFor(grant) : grant;
    return this.apply({ type: "join", connection, now: this.now, grant: g, clientProtocol: 2, iceServers: ICE,
      freshSid: `PA_${g.identity}${++this.ids}`, freshRoomSid: `RM_${++this.ids}` });
  }

  resume(connection: string, identity: string, sid: string): RoomEffect[] {
    return this.apply({ type: "resume", connection, now: this.now, identity, sid, iceServers: ICE });
  }

  send(connection: string, request: SignalRequest["message"]): RoomEffect[] {
    return this.apply({ type: "request", connection, now: this.now, request, freshTrackSid: `TR_${++this.ids}` });
  }

  closed(connection: string): RoomEffect[] {
    return this.apply({ type: "closed", connection, now: this.now });
  }

  tick(at: number): RoomEffect[] {
    this.now = at;
    return this.apply({ type: "tick", now: at });
  }

  session(identity: string) {
    return this.state.sessions.find((s) => s.identity === identity);
  }

  /** The messages the last event sent to `connection`, in order. */
  to(connection: string): Message[] {
    return this.effects.flatMap((e) => (e.type === "send" && e.connection === connection && e.message.case ? [e.message] : []));
  }

  first<C extends Case>(connection: string, kind: C): ValueOf<C> {
    const message = this.to(connection).find((m) => m.case === kind);
    if (!message) throw new Error(`no ${kind} to ${connection}; got ${this.to(connection).map((m) => m.case).join(", ")}`);
    return message.value as ValueOf<C>;
  }

  cases(connection: string): string[] {
    return this.to(connection).map((m) => m.case as string);
  }

  closes(connection: string) {
    return this.effects.filter((e) => e.type === "close" && e.connection === connection);
  }
}

export const offer = (sdp: string, id: number): SignalRequest["message"] =>
  ({ case: "offer", value: create(SessionDescriptionSchema, { type: "offer", sdp, id }) });
export const answer = (sdp: string, id: number): SignalRequest["message"] =>
  ({ case: "answer", value: create(SessionDescriptionSchema, { type: "answer", sdp, id }) });
export const trickle = (target: SignalTarget, candidateInit = CANDIDATE): SignalRequest["message"] =>
  ({ case: "trickle", value: create(TrickleRequestSchema, { candidateInit, target }) });
export const addMic = (cid = MIC_CID): SignalRequest["message"] =>
  ({ case: "addTrack", value: create(AddTrackRequestSchema, { cid, name: "microphone", type: TrackType.AUDIO, source: TrackSource.MICROPHONE }) });
export const leave = (): SignalRequest["message"] =>
  ({ case: "leave", value: create(LeaveRequestSchema, { reason: DisconnectReason.CLIENT_INITIATED }) });
export const pingReq = (timestamp: bigint): SignalRequest["message"] => ({ case: "pingReq", value: create(PingSchema, { timestamp }) });

/** Alice alone with her first offer parked, then Bob: the two paired. */
export function pairedRoom(): Room {
  const room = new Room();
  room.join("a1", "alice");
  room.send("a1", offer(DATA_OFFER, 1));
  room.join("b1", "bob");
  return room;
}

/** Alice paired with Bob and publishing her microphone (offer 2, answered). */
export function publishingRoom(): Room {
  const room = pairedRoom();
  room.send("b1", answer(ANSWER, 1));
  room.send("a1", addMic());
  room.send("a1", offer(micOffer(), 2));
  return room;
}
