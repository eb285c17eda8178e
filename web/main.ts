// The demo page: pick an identity, go online, call another identity, hear them, hang up, and
// watch the call's status history. WebRTC mode signals through the project's Connect services
// (caller: Viam SignalingService; callee: VoiceService over WebSocket) and reads the history
// from `GET /calls/:id/history`; relay mode carries PCM through the seed-003 audio relay.
import { Code, ConnectError } from "@connectrpc/connect";
import { dbfs, LevelMeter } from "./audio-meter";
import {
  ApiError, callRecord, devToken, hangUp, TERMINAL_STATUSES, type CallRecord, type HistoryEntry, type Side,
} from "./call-api";
import { RelayLine, type LineState } from "./relay-call";
import { iceServersFor, WebRtcCall } from "./webrtc-call";

/** How often the page reads a call's history while the call lasts: often enough that a hang-up
 * on the other page shows here within half a second, cheap for the call's object to answer. */
const HISTORY_POLL_MS = 500;
/** Wait before reopening a Voice stream that broke while the page waited for calls. */
const RELISTEN_DELAY_MS = 2_000;
const LEVEL_REFRESH_MS = 100;
const STATS_REFRESH_MS = 1_000;
const NAME_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

type Mode = "webrtc" | "relay";

interface Session {
  identity: string;
  token: string;
  mode: Mode;
  audio: AudioContext;
  mic: MediaStream;
  localMeter: LevelMeter;
  iceServers: RTCIceServer[];
  relay: RelayLine | null;
  /** WebRTC mode: aborts the Voice stream that waits for the next call. */
  listening: AbortController | null;
}

interface ActiveCall {
  side: Side;
  peer: string | null;
  webrtc: WebRtcCall | null;
  remoteMeter: LevelMeter | null;
  ended: boolean;
  /** WebRTC mode: the history poll runs. */
  following: boolean;
  /** Relay mode: the steps this page saw, in order. */
  relayHistory: HistoryEntry[];
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  identity: $<HTMLInputElement>("identity"),
  token: $<HTMLInputElement>("token"),
  room: $<HTMLInputElement>("room"),
  roomField: $("room-field"),
  online: $<HTMLButtonElement>("online"),
  offline: $<HTMLButtonElement>("offline"),
  presence: $("presence"),
  callee: $<HTMLInputElement>("callee"),
  call: $<HTMLButtonElement>("call"),
  hangup: $<HTMLButtonElement>("hangup"),
  callState: $("call-state"),
  callNote: $("call-note"),
  connection: $("connection"),
  rtt: $("rtt"),
  levelLocal: $("level-local"),
  levelRemote: $("level-remote"),
  history: $<HTMLOListElement>("history"),
  historySource: $("history-source"),
  error: $("error"),
  remoteAudio: $<HTMLAudioElement>("remote-audio"),
  modes: [...document.querySelectorAll<HTMLInputElement>("input[name=mode]")],
};

let session: Session | null = null;
let call: ActiveCall | null = null;

// ---- presence ---------------------------------------------------------------------------------

async function goOnline(): Promise<void> {
  clearError();
  const identity = ui.identity.value.trim();
  if (!NAME_PATTERN.test(identity)) {
    return showError("Pick an identity: 1–128 letters, digits or . _ : @ - (no spaces).");
  }
  const mode = selectedMode();
  setPresence("connecting", "Going online…");
  lockSetup(true);
  let mic: MediaStream | null = null;
  let audio: AudioContext | null = null;
  try {
    const token = ui.token.value.trim() || await devToken(identity);
    mic = await navigator.mediaDevices.getUserMedia({ audio: true }).catch((err: Error) => {
      throw new Error(`The microphone is not available (${err.name}): allow it for this page and try again.`);
    });
    // Both modes run at 48 kHz, so two pages' relay proposals always match.
    audio = new AudioContext({ sampleRate: 48_000, latencyHint: "interactive" });
    await audio.resume();
    const s: Session = { identity, token, mode, audio, mic, localMeter: new LevelMeter(audio, mic), iceServers: [],
      relay: null, listening: null };
    if (mode === "webrtc") {
      s.iceServers = await iceServersFor(token, identity);
    } else {
      await audio.audioWorklet.addModule("/build/relay-worklet.js");
      s.relay = await RelayLine.open(ui.room.value.trim(), token, audio, mic, relayEvents());
    }
    session = s;
    setPresence("online", mode === "webrtc"
      ? `Online as ${identity} (WebRTC)`
      : `Online as ${identity} in relay room "${ui.room.value.trim()}"`);
    if (mode === "webrtc") void listen(s);
  } catch (err) {
    mic?.getTracks().forEach((t) => t.stop());
    void audio?.close();
    lockSetup(false);
    setPresence("offline", "Offline");
    showError(wordsFor(err));
  }
  render();
}

function goOffline(): void {
  const s = session;
  if (!s) return;
  if (call) void hangUpCall();
  session = null;
  s.listening?.abort();
  s.relay?.close();
  s.localMeter.disconnect();
  s.mic.getTracks().forEach((t) => t.stop());
  void s.audio.close();
  lockSetup(false);
  setPresence("offline", "Offline");
  render();
}

/** WebRTC mode: keeps a Voice stream open while the page is online and not in a call. */
async function listen(s: Session): Promise<void> {
  while (session === s && !call && !s.listening) {
    const listening = new AbortController();
    s.listening = listening;
    try {
      const webrtc = await WebRtcCall.answerNext({ token: s.token, mic: s.mic, iceServers: s.iceServers,
        signal: listening.signal, events: callEvents() });
      s.listening = null;
      if (session !== s || call) {
        webrtc.close();
        return;
      }
      startCall({ side: "callee", peer: null, webrtc });
      return;
    } catch (err) {
      s.listening = null;
      if (listening.signal.aborted || session !== s) return;
      const e = ConnectError.from(err);
      if (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied) {
        showError(wordsFor(err));
        goOffline();
        return;
      }
      setPresence("reconnecting", `Lost the connection (${e.rawMessage}); reconnecting…`);
      await sleep(RELISTEN_DELAY_MS);
      if (session === s) setPresence("online", `Online as ${s.identity} (WebRTC)`);
    }
  }
}

// ---- calls ------------------------------------------------------------------------------------

function placeCall(): void {
  const s = session;
  if (!s || call) return;
  clearError();
  const callee = ui.callee.value.trim();
  if (!NAME_PATTERN.test(callee)) return showError("Type the identity to call: 1–128 letters, digits or . _ : @ -.");
  if (s.relay) {
    startCall({ side: "caller", peer: callee, webrtc: null });
    s.relay.dial(callee);
    return;
  }
  // One call at a time: while calling out, this page takes no calls.
  s.listening?.abort();
  s.listening = null;
  startCall({ side: "caller", peer: callee,
    webrtc: WebRtcCall.place({ token: s.token, callee, mic: s.mic, iceServers: s.iceServers, events: callEvents() }) });
}

function startCall(c: Pick<ActiveCall, "side" | "peer" | "webrtc">): void {
  const active: ActiveCall = { ...c, remoteMeter: null, ended: false, following: false, relayHistory: [] };
  call = active;
  renderHistory([], null);
  ui.historySource.textContent = active.webrtc ? "" : "(relay: the steps this page saw; the relay keeps no call record)";
  setCallState(active.side === "caller" ? "calling" : "connecting",
    active.side === "caller" ? `Calling ${active.peer}…` : "Incoming call: answering…");
  active.webrtc?.signaling.catch((err: unknown) => {
    if (active.ended) return;
    void endCall(active, wordsFor(err, active.peer), { hangUp: true, failed: true });
  });
  if (active.webrtc?.callId) void followHistory(active);
  render();
}

function callEvents() {
  return {
    onCallId: () => {
      // The callee learns the id while answerNext still runs: followHistory starts in startCall.
      if (call?.webrtc?.callId) void followHistory(call);
    },
    onRemoteStream: (stream: MediaStream) => attachRemote(stream),
    onConnectionState: (state: RTCPeerConnectionState) => {
      const active = call;
      if (!active?.webrtc || active.ended) return;
      ui.connection.textContent = `WebRTC: ${state}`;
      if (state === "connected") setCallState("connected", `In a call with ${active.peer ?? "…"}`);
      else if (state === "disconnected") setCallState("connecting", "Connection interrupted; waiting for it to recover…");
      else if (state === "failed") {
        void endCall(active, "The audio connection failed: WebRTC could not reach the other page. "
          + "Relay mode works where peer-to-peer cannot.", { hangUp: true, failed: true });
      }
    },
  };
}

function relayEvents() {
  return {
    onStatus: (status: string, side: Side | undefined, detail: string) => {
      if (!call) return;
      call.relayHistory.push({ at: Date.now(), status, ...(side ? { side } : {}), ...(detail ? { detail } : {}) });
      const me = session?.identity ?? "";
      const names = call.side === "caller" ? { caller: me, callee: call.peer ?? "?" } : { caller: call.peer ?? "?", callee: me };
      renderHistory(call.relayHistory, names);
    },
    onIncoming: (caller: string) => {
      if (!call) startCall({ side: "callee", peer: caller, webrtc: null });
    },
    onState: (state: LineState, peer: string | null) => {
      if (!call) return;
      call.peer = peer ?? call.peer;
      ui.connection.textContent = `Relay: ${state}`;
      if (state === "paired") setCallState("connected", `In a call with ${call.peer} (relay)`);
    },
    onRemoteStream: (stream: MediaStream) => attachRemote(stream),
    onCallEnded: (reason: string, failed: boolean) => {
      if (call) void endCall(call, reason, { hangUp: false, failed });
    },
    onClosed: (reason: string) => {
      showError(reason);
      goOffline();
    },
  };
}

/** Polls the call's history until it shows the call's end, then ends the call on this page. */
async function followHistory(active: ActiveCall): Promise<void> {
  const s = session;
  if (!s || !active.webrtc?.callId || active.following) return;
  active.following = true;
  const callId = active.webrtc.callId;
  ui.historySource.textContent = `call ${callId}`;
  while (!active.ended) {
    try {
      const record = await callRecord(callId, s.token);
      if (active.ended) return;
      if (!active.peer) {
        // The callee learns who calls from the call's record (a Voice offer does not say).
        active.peer = active.side === "callee" ? record.caller.identity : record.callee?.identity ?? null;
        if (ui.callState.dataset.state === "connected") setCallState("connected", `In a call with ${active.peer}`);
      }
      renderHistory(record.history, namesIn(record));
      const last = record.history.at(-1);
      if (last && TERMINAL_STATUSES.has(last.status)) {
        await endCall(active, endInWords(last, record, active.side), { hangUp: false, failed: last.status !== "hung_up" });
        return;
      }
    } catch (err) {
      if (!active.ended) console.warn("history poll failed", wordsFor(err));
    }
    await sleep(HISTORY_POLL_MS);
  }
}

async function hangUpCall(): Promise<void> {
  const active = call;
  if (!active || active.ended) return;
  if (session?.relay) {
    session.relay.hangUp();
    return;
  }
  await endCall(active, "You hung up.", { hangUp: true, failed: false });
}

/** Ends the call on this page; with `hangUp`, ends it in the call model too, for the other page.
 * A call that `failed` (rather than being hung up) also shows its reason as an error. */
async function endCall(active: ActiveCall, reason: string, opts: { hangUp: boolean; failed: boolean }): Promise<void> {
  if (active.ended) return;
  active.ended = true;
  const s = session;
  const callId = active.webrtc?.callId;
  let hangUpFailed: unknown = null;
  // Hang up before closing: a signaling stream closed first would end the call as "disconnected".
  if (s && callId && opts.hangUp) await hangUp(callId, s.token).catch((err: unknown) => { hangUpFailed = err; });
  active.webrtc?.close();
  active.remoteMeter?.disconnect();
  ui.remoteAudio.srcObject = null;
  if (call === active) call = null;
  setCallState("idle", "Idle");
  ui.callNote.textContent = reason;
  if (opts.failed) showError(reason);
  ui.rtt.textContent = "—";
  render();
  if (hangUpFailed) showError(`Could not end the call on the server: ${wordsFor(hangUpFailed)}`);
  if (s && callId) {
    // The final statuses, including the end this page may have just caused.
    const record = await callRecord(callId, s.token).catch(() => null);
    if (record) renderHistory(record.history, namesIn(record));
  }
  if (s && session === s && s.mode === "webrtc") void listen(s);
}

function attachRemote(stream: MediaStream): void {
  const s = session;
  if (!s || !call) return;
  call.remoteMeter?.disconnect();
  // A remote WebRTC track feeds Web Audio only while a media element plays it (Chromium).
  ui.remoteAudio.srcObject = stream;
  void ui.remoteAudio.play().catch((err: DOMException) => {
    // Only a refusal by the autoplay policy matters; an aborted play (the call ended) does not.
    if (err.name !== "NotAllowedError") return;
    showError("The browser blocked audio playback: click anywhere on the page to hear the call.");
    document.addEventListener("click", () => { clearError(); void ui.remoteAudio.play(); }, { once: true });
  });
  call.remoteMeter = new LevelMeter(s.audio, stream);
}

// ---- words ------------------------------------------------------------------------------------

function endInWords(last: HistoryEntry, record: CallRecord, mySide: Side): string {
  const name = (side?: Side) => side === "caller" ? record.caller.identity : record.callee?.identity ?? "the callee";
  switch (last.status) {
    case "hung_up":
      return last.side === mySide ? "You hung up." : `${name(last.side)} hung up.`;
    case "timed_out":
      return `The call timed out: ${last.detail ?? "no answer"}.`;
    default:
      return `The call failed: ${last.detail ?? "unknown reason"}.`;
  }
}

/** An error as a sentence a person can act on. */
function wordsFor(err: unknown, peer?: string | null): string {
  if (err instanceof ApiError) {
    if (err.code === "unauthenticated") return `The server refused your token (${err.message}). Go offline and online again.`;
    return err.message;
  }
  if (err instanceof ConnectError) {
    const who = peer ?? "The other side";
    switch (err.code) {
      case Code.NotFound: return peer ? `${peer} is not online.` : err.rawMessage;
      case Code.DeadlineExceeded: return `${who} did not answer in time.`;
      case Code.Unauthenticated: return `The server refused your token (${err.rawMessage}). Go offline and online again.`;
      case Code.PermissionDenied: return `Not allowed: ${err.rawMessage}.`;
      case Code.ResourceExhausted: return `${who} has too many calls waiting; try again in a moment.`;
      case Code.Unavailable: return `The connection broke: ${err.rawMessage}.`;
      case Code.Aborted: return `${err.rawMessage}.`;
      default: return `The call failed: ${err.rawMessage}.`;
    }
  }
  if (err instanceof TypeError) return `Could not reach the server (${err.message}).`;
  return err instanceof Error ? err.message : String(err);
}

// ---- rendering --------------------------------------------------------------------------------

function selectedMode(): Mode {
  return ui.modes.find((m) => m.checked)?.value === "relay" ? "relay" : "webrtc";
}

function setPresence(state: string, text: string): void {
  ui.presence.dataset.state = state;
  ui.presence.textContent = text;
}

function setCallState(state: string, text: string): void {
  ui.callState.dataset.state = state;
  ui.callState.textContent = text;
  if (state !== "idle") ui.callNote.textContent = "";
}

function lockSetup(locked: boolean): void {
  for (const input of [ui.identity, ui.token, ui.room, ...ui.modes]) input.disabled = locked;
}

function render(): void {
  ui.roomField.hidden = selectedMode() !== "relay";
  ui.online.disabled = session !== null || ui.presence.dataset.state === "connecting";
  ui.offline.disabled = session === null;
  ui.call.disabled = session === null || call !== null;
  ui.hangup.disabled = call === null;
  if (!call) {
    ui.connection.textContent = !session ? "—"
      : session.relay ? "Relay socket open: waiting for calls" : "Voice stream open: waiting for calls";
  }
}

function showError(message: string): void {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function clearError(): void {
  ui.error.hidden = true;
  ui.error.textContent = "";
}

const STATUS_WORDS: Record<string, string> = {
  offered: "offered", claimed: "taken by the callee", answered: "answered", caller_done: "caller sent all candidates",
  callee_done: "callee sent all candidates", exchanged: "signaling complete", hung_up: "hung up", failed: "failed",
  timed_out: "timed out", accepted: "accepted", counter_proposed: "counter-proposed", rejected: "rejected",
  user_not_found: "callee not in the room",
};

function namesIn(record: CallRecord): Record<Side, string> {
  return { caller: record.caller.identity, callee: record.callee?.identity ?? "?" };
}

function renderHistory(entries: HistoryEntry[], names: Record<Side, string> | null): void {
  const start = entries[0]?.at ?? 0;
  const nameOf = (side?: Side) => !side ? "" : names ? `${side} (${names[side]})` : side;
  ui.history.replaceChildren(...entries.map((e) => {
    const li = document.createElement("li");
    li.dataset.status = e.status;
    if (e.side) li.dataset.side = e.side;
    const time = document.createElement("time");
    time.textContent = `+${((e.at - start) / 1000).toFixed(2)} s`;
    const status = document.createElement("strong");
    status.textContent = STATUS_WORDS[e.status] ?? e.status;
    status.title = e.status;
    const by = document.createElement("span");
    by.className = "side";
    by.textContent = nameOf(e.side);
    const detail = document.createElement("span");
    detail.className = "detail";
    detail.textContent = e.detail ?? "";
    li.append(time, status, by, detail);
    return li;
  }));
}

function showLevel(bar: HTMLElement, rms: number | null): void {
  const db = rms === null ? -100 : dbfs(rms);
  bar.dataset.rms = rms === null ? "" : rms.toFixed(4);
  // -60 dBFS (quiet room) to 0 dBFS (full scale) across the bar.
  bar.style.width = `${Math.max(0, Math.min(100, (db + 60) / 60 * 100))}%`;
  bar.parentElement!.title = rms === null ? "no audio" : `${db.toFixed(1)} dBFS`;
}

setInterval(() => {
  showLevel(ui.levelLocal, session ? session.localMeter.rms() : null);
  showLevel(ui.levelRemote, call?.remoteMeter ? call.remoteMeter.rms() : null);
}, LEVEL_REFRESH_MS);

setInterval(async () => {
  const active = call;
  let rtt: number | null = null;
  if (active?.webrtc) rtt = await active.webrtc.roundTripMs().catch(() => null);
  else if (session?.relay) rtt = session.relay.rttMs;
  const label = session?.relay ? " (to the relay)" : " (peer to peer)";
  ui.rtt.textContent = rtt === null ? "—" : `${rtt.toFixed(0)} ms${label}`;
  ui.rtt.dataset.ms = rtt === null ? "" : rtt.toFixed(1);
}, STATS_REFRESH_MS);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---- wiring -----------------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
ui.identity.value = params.get("identity") ?? ui.identity.value;
ui.callee.value = params.get("call") ?? ui.callee.value;
ui.room.value = params.get("room") ?? ui.room.value;
if (params.get("mode") === "relay") ui.modes.forEach((m) => { m.checked = m.value === "relay"; });

ui.online.addEventListener("click", () => void goOnline());
ui.offline.addEventListener("click", () => goOffline());
ui.call.addEventListener("click", () => placeCall());
ui.hangup.addEventListener("click", () => void hangUpCall());
ui.modes.forEach((m) => m.addEventListener("change", render));
ui.callee.addEventListener("keydown", (e) => { if (e.key === "Enter") placeCall(); });
// Leaving the page mid-call hangs up, so the other page is not left talking to nobody.
addEventListener("pagehide", () => {
  const callId = call?.webrtc?.callId;
  if (session && callId) {
    void fetch(`/calls/${callId}/hangup`, { method: "POST", keepalive: true, headers: { authorization: `Bearer ${session.token}` } });
  }
  session?.relay?.close();
});
render();
