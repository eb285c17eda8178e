// What a SIP account's effects do outside the account (model/sip-model.ts decides them; the
// account object performs them through this): its calls in the shared call model (CallObject), its
// place at its HostObject, and its audio leg in the relay.
import { Code } from "@connectrpc/connect";
import { SIP_AUDIO_DIAL_AFTER_CONNECT_MS } from "../model/limits";
import type { SipEffect, SipEvent } from "../model/sip-model";
import type { Result } from "../model/result";
import type { CallChange } from "./call";
import type { SipAudioLeg } from "./sip-audio-leg";

/** The account as its effects reach it. */
export interface SipEffectHost {
  env: Env;
  run(event: SipEvent): Promise<Result<void>>;
  followCall(change: CallChange): Promise<void>;
  openLeg(callId: string, peer: string, dials: boolean, dialUntil: number): Promise<SipAudioLeg | undefined>;
  leg(): SipAudioLeg | undefined;
  dropLeg(): void;
  background(what: string, work: Promise<unknown>): void;
}

export async function performSipEffect(host: SipEffectHost, account: string, effect: SipEffect): Promise<void> {
  switch (effect.type) {
    case "status":
      return;
    case "start_call": {
      const call = host.env.CALLS.getByName(effect.callId);
      // SIP carries no SDP and no ICE: the offer is empty and the caller is done at once; the
      // media is the audio relay room named by the call id.
      const started = await call.start(effect.callId, { host: effect.callee, caller: { identity: account, door: "sip" },
        sdp: "", disableTrickle: true, deadline: effect.ringDeadline, meta: effect.meta });
      if (!started.ok) {
        const reason = started.code === Code.NotFound ? `${effect.callee} is not online` : started.message;
        await host.run({ type: "ended", callId: effect.callId, failed: true, reason, now: Date.now() });
        return;
      }
      const watched = await call.watch(account);
      await call.act("caller", account, { op: "done" });
      if (watched.ok) await host.followCall(watched.value);
      return;
    }
    case "answer_call": {
      const call = host.env.CALLS.getByName(effect.callId);
      const claimed = await call.claim({ identity: account, door: "sip" });
      await host.env.HOSTS.getByName(account).ack(effect.callId);
      // Not claimed: taken through another door, or ended; its notification settles the state.
      if (!claimed.ok) return;
      await host.openLeg(effect.callId, claimed.value.caller.identity, false, 0);
      const answered = await call.act("callee", account, { op: "answer", sdp: "" });
      if (!answered.ok) return;
      await call.act("callee", account, { op: "done" });
      await host.run({ type: "connected", callId: effect.callId, now: Date.now() });
      return;
    }
    case "end_call": {
      const call = host.env.CALLS.getByName(effect.callId);
      if (effect.claimFirst) {
        await call.claim({ identity: account, door: "sip" });
        await host.env.HOSTS.getByName(account).ack(effect.callId);
      }
      const ended = effect.code === null
        ? await call.act(effect.side, account, { op: "hangup" })
        : await call.act(effect.side, account, { op: "fail", code: effect.code, message: effect.reason });
      if (!ended.ok && ended.code !== Code.FailedPrecondition) {
        console.warn("sip account could not end its call", { callId: effect.callId, message: ended.message });
      }
      return;
    }
    case "open_leg":
      await host.openLeg(effect.callId, effect.peer, effect.dials, effect.dialUntil + SIP_AUDIO_DIAL_AFTER_CONNECT_MS);
      return;
    case "close_leg": {
      const leg = host.leg();
      if (leg?.callId === effect.callId) {
        leg.close();
        host.dropLeg();
      }
      return;
    }
    case "stop_playback":
      host.leg()?.stopPlayback();
      return;
    case "drain": {
      const leg = host.leg()?.callId === effect.callId ? host.leg() : undefined;
      const drained = leg ? leg.whenDrained() : Promise.resolve();
      // Not awaited: EndCall returns at soft_hangup_initiated; the alarm bounds the wait.
      host.background("soft hangup", drained.then(() => host.run({ type: "drained", callId: effect.callId, now: Date.now() })));
      return;
    }
    case "set_muted":
      host.leg()?.setMuted(effect.muted);
      return;
  }
}
