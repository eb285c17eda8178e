// The browser side of the LiveKit e2e test: the unmodified livekit-client from npm with a default
// `new Room()`, driven by the test through `window.lk`. esbuild bundles it at test time.
import { Room, RoomEvent, Track, type RemoteTrack } from "livekit-client";

export interface PageEvent {
  name: string;
  detail?: unknown;
  /** ms since the page loaded */
  at: number;
}

export interface ConnectOutcome {
  ok: boolean;
  error?: { name: string; message: string; reason?: number; status?: number };
  ms: number;
}

const room = new Room();
const events: PageEvent[] = [];
const received: { from?: string; text: string }[] = [];
const analysers: AnalyserNode[] = [];
const record = (name: string, detail?: unknown) => events.push({ name, detail, at: Math.round(performance.now()) });

room
  .on(RoomEvent.ParticipantConnected, (p) => record("participantConnected", p.identity))
  .on(RoomEvent.ParticipantDisconnected, (p) => record("participantDisconnected", p.identity))
  .on(RoomEvent.TrackSubscribed, (track, _pub, p) => {
    record("trackSubscribed", { identity: p.identity, kind: track.kind, sid: track.sid });
    if (track.kind === Track.Kind.Audio) listen(track);
  })
  .on(RoomEvent.DataReceived, (payload, p) => received.push({ from: p?.identity, text: new TextDecoder().decode(payload) }))
  .on(RoomEvent.TrackPublished, (pub, p) => record("trackPublished", { identity: p.identity, sid: pub.trackSid }))
  .on(RoomEvent.TrackUnpublished, (pub, p) => record("trackUnpublished", { identity: p.identity, sid: pub.trackSid }))
  .on(RoomEvent.TrackSubscriptionFailed, (sid, p) => record("trackSubscriptionFailed", { identity: p.identity, sid }))
  .on(RoomEvent.SignalReconnecting, () => record("signalReconnecting"))
  .on(RoomEvent.Reconnecting, () => record("reconnecting"))
  .on(RoomEvent.Reconnected, () => record("reconnected"))
  .on(RoomEvent.Disconnected, (reason) => record("disconnected", reason));

/** Feeds a received audio track into an analyser. Chrome hands remote WebRTC audio to Web Audio
 * only while a media element plays the track, hence the attach. */
function listen(track: RemoteTrack): void {
  document.body.append(track.attach());
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 2048;
  context.createMediaStreamSource(new MediaStream([track.mediaStreamTrack])).connect(analyser);
  analysers.push(analyser);
}

const lk = {
  async connect(url: string, token: string): Promise<ConnectOutcome> {
    const started = performance.now();
    try {
      await room.connect(url, token);
      return { ok: true, ms: performance.now() - started };
    } catch (err) {
      const e = err as { name: string; message: string; reason?: number; status?: number };
      return { ok: false, error: { name: e.name, message: e.message, reason: e.reason, status: e.status }, ms: performance.now() - started };
    }
  },
  remoteIdentities: () => [...room.remoteParticipants.values()].map((p) => p.identity),
  async publishMicrophone(): Promise<string | undefined> {
    return (await room.localParticipant.setMicrophoneEnabled(true))?.trackSid;
  },
  /** Whether each remote participant's microphone is subscribed, by identity. */
  subscribedMicrophones: () => Object.fromEntries([...room.remoteParticipants.values()].map((p) =>
    [p.identity, p.getTrackPublication(Track.Source.Microphone)?.isSubscribed ?? false])),
  /** The loudest RMS of the latest received audio track over `ms` milliseconds (0 before any
   * track), and the dominant frequency at that moment. */
  async receivedSignal(ms: number): Promise<{ rms: number; hz: number }> {
    const analyser = analysers.at(-1);
    if (!analyser) return { rms: 0, hz: 0 };
    const samples = new Float32Array(analyser.fftSize);
    const spectrum = new Float32Array(analyser.frequencyBinCount);
    let loudest = { rms: 0, hz: 0 };
    for (const until = performance.now() + ms; performance.now() < until;) {
      analyser.getFloatTimeDomainData(samples);
      const rms = Math.sqrt(samples.reduce((sum, s) => sum + s * s, 0) / samples.length);
      if (rms > loudest.rms) {
        analyser.getFloatFrequencyData(spectrum);
        const peak = spectrum.indexOf(Math.max(...spectrum));
        loudest = { rms, hz: (peak * analyser.context.sampleRate) / analyser.fftSize };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return loudest;
  },
  async publishText(text: string): Promise<void> {
    await room.localParticipant.publishData(new TextEncoder().encode(text), { reliable: true });
  },
  received: () => received,
  events: () => events,
  /** livekit-client's own test hook: "signal-reconnect" drops the signalling socket (a resume),
   * "full-reconnect" restarts the session with new peer connections. */
  simulate: (scenario: "signal-reconnect" | "full-reconnect") => room.simulateScenario(scenario),
  disconnect: () => room.disconnect(),
};

declare global {
  interface Window {
    lk: typeof lk;
  }
}
window.lk = lk;
