// The Viam-shaped floor: the least a Worker and one Durable Object per host can do to serve Viam's
// proto.rpc.webrtc.v1.SignalingService Call, Answer and CallUpdate over the Connect streaming
// protocol (bench/viam-floor-bench.mjs starts it under the same `wrangler dev` as the Worker under
// test and drives both with the same client). What it keeps of the spine's shape:
// - one HTTP request per Call, and one held Answer stream per answerer, each with a hibernatable
//   WebSocket from the Worker to the host's object;
// - the host's AnswerResponse init/update bytes go to the caller unchanged as CallResponse bytes
//   (the two messages have the same field numbers: uuid 1, init 2 { sdp 1 }, update 3 { candidate 1 });
// - a call that finds every answerer busy waits in line at the host's object (in memory).
// What it leaves out: auth, rate limits, storage, an object per call, heartbeats, ICE config,
// reconnects, deadlines. The Connect framing is written by hand (5-byte envelope: flags, then a
// big-endian uint32 length; flag 0x02 ends a stream with a JSON trailer), and so is the little
// protobuf it reads: a message's top-level fields.
//
// The object speaks to the Worker's sockets in two kinds of message: binary, the protobuf bytes to
// put in the next envelope; text, the end of the stream ("end", or a JSON Connect error).
//
// SHAPE = "call-object" (a var; bench/viam-floor-bench.mjs sets it for an experiment, never for the
// floor itself) routes the exchange as this Worker's spine does, and nothing else like it: the Call
// opens its socket to a new object per call (CallRoom), which asks the host's object to hand the
// call out (an RPC); the answerer's Worker, told the call id on its host socket, opens a second
// socket, to the call's object, and the exchange then runs there. Still no auth, no storage, no
// Connect library: the difference to the floor is the object per call and its hops.
// SHAPE = "call-object-offer-first" is the same with the offer handed out with the call: the call's
// object gives it to the host's object in the RPC that rings it, the host's object pushes it down
// the answerer's socket, and the answerer's Worker writes it to the machine at once while it opens
// its socket to the call's object (the claim) in parallel. It measures what the claim's round trip
// before the offer costs.
import { DurableObject } from "cloudflare:workers";

const SERVICE = "/proto.rpc.webrtc.v1.SignalingService/";
const STREAM_TYPE = "application/connect+proto";
const END_STREAM = 0x02;
const utf8 = new TextEncoder();

// ---- protobuf and Connect framing -------------------------------------------------------------

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.byteLength; }
  return out;
}

function varint(n) {
  const out = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
  out.push(n);
  return Uint8Array.from(out);
}

/** A length-delimited field (string, bytes or message) `num` holding `bytes`. */
const field = (num, bytes) => concat(varint((num << 3) | 2), varint(bytes.byteLength), bytes);

/** The top-level fields of a message: [num, value] with value the bytes (length-delimited) or the number (varint). */
function fieldsOf(bytes) {
  const out = [];
  let at = 0;
  const read = () => {
    let n = 0, shift = 0, b;
    do { b = bytes[at++]; n += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
    return n;
  };
  while (at < bytes.byteLength) {
    const tag = read(), num = tag >>> 3, wire = tag & 7;
    if (wire === 0) out.push([num, read()]);
    else if (wire === 2) { const len = read(); out.push([num, bytes.subarray(at, at + len)]); at += len; }
    else throw new Error(`wire type ${wire} not expected here`);
  }
  return out;
}

function envelope(flags, bytes) {
  const out = new Uint8Array(5 + bytes.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, bytes.byteLength);
  out.set(bytes, 5);
  return out;
}

/** The end-stream envelope: `{}`, or `{"error": {...}}` for a Connect error. */
const endStream = (error) => envelope(END_STREAM, utf8.encode(JSON.stringify(error ? { error } : {})));

/** The envelopes of a request body as they arrive: { flags, message }. */
async function* envelopes(body) {
  const reader = body.getReader();
  let buf = new Uint8Array(0);
  for (;;) {
    while (buf.byteLength >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset, 5).getUint32(1);
      if (buf.byteLength < 5 + len) break;
      yield { flags: buf[0], message: buf.slice(5, 5 + len) };
      buf = buf.subarray(5 + len);
    }
    const { done, value } = await reader.read();
    if (done) return;
    buf = buf.byteLength ? concat(buf, value) : value;
  }
}

const connectError = (status, code, message) =>
  new Response(JSON.stringify({ code, message }), { status, headers: { "content-type": "application/json" } });

// ---- the host's object -------------------------------------------------------------------------

export class Host extends DurableObject {
  /** Calls that found every answerer busy, oldest first: call id → the AnswerRequest init bytes.
   * In memory: a waiting caller keeps its socket, and so the object, busy. */
  queued = new Map();

  /** Only WebSocket upgrades, from the Worker: `?role=answerer`, or `?role=caller&call=UUID`. */
  async fetch(request) {
    const url = new URL(request.url);
    const { 0: client, 1: server } = new WebSocketPair();
    if (url.searchParams.get("role") === "answerer") {
      this.ctx.acceptWebSocket(server, ["answerer"]);
      server.serializeAttachment({ call: null });
      const [next] = this.queued;
      if (next) {
        this.queued.delete(next[0]);
        this.hand(server, next[0], next[1]);
      }
    } else {
      const call = url.searchParams.get("call");
      this.ctx.acceptWebSocket(server, ["caller", call]);
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Gives call `call` (its AnswerRequest init bytes) to an idle answerer's socket. */
  hand(ws, call, offer) {
    ws.serializeAttachment({ call });
    ws.send(offer);
  }

  answererOf(call) {
    return this.ctx.getWebSockets("answerer").find((ws) => ws.deserializeAttachment()?.call === call);
  }

  webSocketMessage(ws, message) {
    const [role, call] = this.ctx.getTags(ws);
    if (role === "caller") {
      // The offer, as the AnswerRequest the Worker built: to the longest-connected idle answerer.
      const idle = this.ctx.getWebSockets("answerer").find((a) => a.deserializeAttachment()?.call === null);
      if (idle) this.hand(idle, call, message);
      else this.queued.set(call, message);
      return;
    }
    // An AnswerResponse from the answerer of the call in its attachment.
    const { call: taken } = ws.deserializeAttachment() ?? {};
    const caller = taken ? this.ctx.getWebSockets(taken)[0] : undefined;
    if (!caller) return;
    const stage = fieldsOf(new Uint8Array(message)).find(([num]) => num >= 2)?.[0];
    if (stage === 2 || stage === 3) caller.send(message); // init, update: the same bytes are a CallResponse
    else if (stage === 4) caller.send("end"); // done: the Viam SDK waits for the Call stream to end
    else caller.send(JSON.stringify({ code: "unknown", message: "the answerer failed" }));
  }

  /** CallUpdate: a CallUpdateRequest's candidate (field 2) or done (3) for the answerer of its uuid. */
  async update(bytes) {
    const fields = fieldsOf(bytes);
    const uuid = fields.find(([num]) => num === 1)?.[1];
    return forwardUpdate(uuid && this.answererOf(new TextDecoder().decode(uuid)), fields);
  }

  /** SHAPE = "call-object…": the call's object asks for an answerer; the call's id goes down the
   * socket, or with "call-object-offer-first" the offer itself (its AnswerRequest bytes). */
  async enqueue(call, offer) {
    const idle = this.ctx.getWebSockets("answerer").find((a) => a.deserializeAttachment()?.call === null);
    if (idle) this.hand(idle, call, offer ?? call);
    else this.queued.set(call, offer ?? call);
  }

  webSocketClose(ws, code, reason) {
    const [role, call] = this.ctx.getTags(ws);
    if (role === "caller") this.queued.delete(call);
    // Complete the closing handshake; 1005/1006 are only ever reported, never sent.
    try { ws.close(code === 1005 || code === 1006 ? 1000 : code, reason); } catch { /* already closed */ }
  }
}

/** A CallUpdateRequest's fields (uuid 1, candidate 2, done 3) to the answerer's socket, as AnswerRequests. */
function forwardUpdate(answerer, fields) {
  if (!answerer) return false;
  const uuid = fields.find(([num]) => num === 1)[1];
  for (const [num, value] of fields) {
    // AnswerRequest { uuid 1, update 3 { candidate 1 } } and { uuid 1, done 4 {} }
    if (num === 2) answerer.send(concat(field(1, uuid), field(3, field(1, value))));
    else if (num === 3 && value) {
      answerer.send(concat(field(1, uuid), field(4, new Uint8Array(0))));
      answerer.send("end"); // the exchange is over: the Answer stream ends
    }
  }
  return true;
}

/** SHAPE = "call-object" only: one object per call, between the caller's and the answerer's sockets. */
export class CallRoom extends DurableObject {
  offer = null;

  async fetch(request) {
    const url = new URL(request.url);
    const role = url.searchParams.get("role");
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [role]);
    if (role === "caller") server.serializeAttachment({ host: url.searchParams.get("host"), call: url.searchParams.get("call") });
    else if (this.offer && this.env.SHAPE !== "call-object-offer-first") server.send(this.offer); // the callee: the offer, at once
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws, message) {
    const [role] = this.ctx.getTags(ws);
    if (role === "caller") {
      this.offer = message;
      const { host, call } = ws.deserializeAttachment();
      await this.env.HOST.getByName(host).enqueue(call, this.env.SHAPE === "call-object-offer-first" ? message : undefined);
      return;
    }
    const caller = this.ctx.getWebSockets("caller")[0];
    if (!caller) return;
    const stage = fieldsOf(new Uint8Array(message)).find(([num]) => num >= 2)?.[0];
    if (stage === 2 || stage === 3) caller.send(message);
    else if (stage === 4) caller.send("end");
    else caller.send(JSON.stringify({ code: "unknown", message: "the answerer failed" }));
  }

  async update(bytes) {
    return forwardUpdate(this.ctx.getWebSockets("callee")[0], fieldsOf(bytes));
  }

  webSocketClose(ws, code, reason) {
    try { ws.close(code === 1005 || code === 1006 ? 1000 : code, reason); } catch { /* already closed */ }
  }
}

// ---- the Worker --------------------------------------------------------------------------------

async function socketTo(namespace, name, query) {
  const res = await namespace.getByName(name).fetch(`https://object/socket?${query}`, { headers: { upgrade: "websocket" } });
  const ws = res.webSocket;
  if (!ws) throw new Error(`the host's object refused the socket (${res.status})`);
  ws.binaryType = "arraybuffer"; // the standard's default is Blob (websocket_standard_binary_type)
  ws.accept();
  return ws;
}

/** A streaming Connect response fed by an object's socket (`follow(ws)`, once or again) until it
 * says the stream ended; `onText` may take a text message first (the call-object shape's call id). */
function streamOut(request) {
  const { readable, writable } = new TransformStream();
  const writer = writable.getWriter();
  const sockets = [];
  let open = true;
  const closeAll = () => { for (const ws of sockets) { try { ws.close(1000, "stream ended"); } catch { /* closed */ } } };
  const end = (error) => {
    if (!open) return;
    open = false;
    void writer.write(endStream(error)).then(() => writer.close()).catch(() => undefined);
    closeAll();
  };
  // The client went away (a dialer cancels its Call once it is done with it).
  request.signal.addEventListener("abort", () => {
    open = false;
    closeAll();
    void writer.abort().catch(() => undefined);
  });
  return {
    response: new Response(readable, { headers: { "content-type": STREAM_TYPE } }),
    follow(ws, onText, onBinary) {
      sockets.push(ws);
      ws.addEventListener("message", (e) => {
        if (!open) return;
        if (typeof e.data !== "string") {
          void writer.write(envelope(0, new Uint8Array(e.data))).catch(() => undefined);
          onBinary?.(new Uint8Array(e.data));
        } else if (!onText?.(e.data)) end(e.data === "end" ? null : JSON.parse(e.data));
      });
      ws.addEventListener("close", () => { if (!onText) end({ code: "unavailable", message: "the object closed the stream" }); });
    },
  };
}

/** Call: one envelope with a CallRequest { sdp 1 }; a CallResponse per envelope back. */
async function call(request, env, host) {
  const body = new Uint8Array(await request.arrayBuffer());
  const callRequest = body.subarray(5, 5 + new DataView(body.buffer, body.byteOffset, 5).getUint32(1));
  const sdp = fieldsOf(callRequest).find(([num]) => num === 1)?.[1];
  if (!sdp) return connectError(400, "invalid_argument", "sdp is required");
  const uuid = crypto.randomUUID();
  const ws = env.SHAPE?.startsWith("call-object")
    ? await socketTo(env.CALL, uuid, `role=caller&call=${uuid}&host=${encodeURIComponent(host)}`)
    : await socketTo(env.HOST, host, `role=caller&call=${uuid}`);
  // AnswerRequest { uuid 1, init 2 { sdp 1 } }: the caller's sdp bytes as they came.
  ws.send(concat(field(1, utf8.encode(uuid)), field(2, field(1, sdp))));
  const out = streamOut(request);
  out.follow(ws);
  return out.response;
}

/** Answer (bidi): AnswerResponses in, forwarded to the object as they come; AnswerRequests out. */
async function answer(request, env, host) {
  const hostWs = await socketTo(env.HOST, host, "role=answerer");
  const out = streamOut(request);
  let ws = hostWs; // where the client's AnswerResponses go
  let held = [];
  const claim = (call) => {
    void socketTo(env.CALL, call, "role=callee").then((callWs) => {
      out.follow(callWs);
      ws = callWs;
      for (const m of held) callWs.send(m);
      held = [];
    });
  };
  if (env.SHAPE === "call-object") {
    // The host's object sends the call id; the exchange then runs on a socket to the call's object.
    ws = null;
    out.follow(hostWs, (call) => { claim(call); return true; });
  } else if (env.SHAPE === "call-object-offer-first") {
    // The host's object sends the offer (written to the machine as it comes); the claim goes in parallel.
    ws = null;
    out.follow(hostWs, () => true, (offer) => claim(new TextDecoder().decode(fieldsOf(offer).find(([num]) => num === 1)[1])));
  } else {
    out.follow(hostWs);
  }
  void (async () => {
    for await (const { flags, message } of envelopes(request.body)) {
      if (flags & END_STREAM) break;
      if (ws) ws.send(message);
      else held.push(message);
    }
  })().catch(() => undefined);
  return out.response;
}

/** CallUpdate (unary, Connect: the body is the bare CallUpdateRequest). */
async function callUpdate(request, env, host) {
  const body = new Uint8Array(await request.arrayBuffer());
  if (env.SHAPE?.startsWith("call-object")) {
    const uuid = fieldsOf(body).find(([num]) => num === 1)?.[1];
    if (uuid) await env.CALL.getByName(new TextDecoder().decode(uuid)).update(body);
  } else {
    await env.HOST.getByName(host).update(body);
  }
  // Accepted for a call already over too, as goutils accepts a late done.
  return new Response(new Uint8Array(0), { headers: { "content-type": "application/proto" } });
}

const METHODS = { Call: call, Answer: answer, CallUpdate: callUpdate };

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return new Response("ok"); // processes.mjs startWrangler waits for it
    const method = url.pathname.startsWith(SERVICE) ? METHODS[url.pathname.slice(SERVICE.length)] : undefined;
    if (!method || request.method !== "POST") return connectError(404, "unimplemented", "not found");
    const host = request.headers.get("rpc-host");
    if (!host) return connectError(400, "invalid_argument", "rpc-host header is required");
    return method(request, env, host);
  },
};
