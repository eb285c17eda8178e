// A Connect Transport that runs streaming methods over one WebSocket each, so browsers can use
// the generated clients for bidi methods (VoiceService.Connect, SignalingService.Answer). Unary
// calls go to the fallback transport (e.g. connect-web's). Protocol: worker/connect-websocket.ts.
import { fromBinary, toBinary, create, type DescMessage, type DescMethodStreaming, type MessageInitShape,
  type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type StreamResponse, type Transport } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { endStreamFlag, endStreamFromJson } from "@connectrpc/connect/protocol-connect";
import { asyncQueue } from "./async-queue";

export interface WebSocketTransportOptions {
  /** http(s) base URL of the Worker; the WebSocket URL is derived from it. */
  baseUrl: string;
  /** Bearer token, sent as ?access_token= (browsers cannot set WebSocket headers). */
  token?: string | (() => string | Promise<string>);
  /** Transport for unary methods. */
  fallback: Transport;
  /** WebSocket constructor; defaults to the global one (pass `ws`'s in Node < 22). */
  WebSocket?: typeof WebSocket;
}

const HEADER_BYTES = 5;
/** Flag of the envelope carrying the handler's own response headers (worker/connect-websocket.ts). */
const RESPONSE_HEADERS_FLAG = 0b0100_0000;

export function createWebSocketTransport(options: WebSocketTransportOptions): Transport {
  const WS = options.WebSocket ?? globalThis.WebSocket;
  return {
    unary: (...args) => options.fallback.unary(...args),
    async stream<I extends DescMessage, O extends DescMessage>(method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined, _timeoutMs: number | undefined, header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>): Promise<StreamResponse<I, O>> {
      const url = new URL(`${options.baseUrl.replace(/\/$/, "")}/ws/${method.parent.typeName}/${method.name}`);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      const token = typeof options.token === "function" ? await options.token() : options.token;
      if (token) url.searchParams.set("access_token", token);
      new Headers(header).forEach((value, name) => url.searchParams.set(name, value));

      const socket = new WS(url.toString());
      socket.binaryType = "arraybuffer";
      const inbox = messageQueue(socket)[Symbol.asyncIterator]();
      await new Promise<void>((resolve, reject) => {
        socket.addEventListener("open", () => resolve(), { once: true });
        socket.addEventListener("error", () => reject(new ConnectError("WebSocket failed to open", Code.Unavailable)), { once: true });
      });
      signal?.addEventListener("abort", () => socket.close(1000, "aborted"), { once: true });

      // Request messages go out as they are produced; the end-stream envelope marks the end.
      void (async () => {
        try {
          for await (const init of input) {
            if (socket.readyState !== WS.OPEN) return;
            socket.send(encodeEnvelope(0, toBinary(method.input, create(method.input, init))));
          }
          if (socket.readyState === WS.OPEN) socket.send(encodeEnvelope(endStreamFlag, new Uint8Array(0)));
        } catch {
          socket.close(1000, "request stream failed");
        }
      })();

      // As over HTTP, the response starts with its headers: wait for the first envelope, which
      // carries them if the handler set any (else it is already a message or the end).
      const responseHeader = new Headers();
      let first: IteratorResult<Uint8Array> | null = await inbox.next();
      if (!first.done && first.value[0] === RESPONSE_HEADERS_FLAG) {
        const own = JSON.parse(new TextDecoder().decode(first.value.subarray(HEADER_BYTES))) as Record<string, string>;
        for (const [name, value] of Object.entries(own)) responseHeader.set(name, value);
        first = null;
      }

      async function* messages(): AsyncGenerator<MessageShape<O>> {
        for (let r = first ?? await inbox.next(); !r.done; r = await inbox.next()) {
          const bytes = r.value;
          const flags = bytes[0];
          const data = bytes.subarray(HEADER_BYTES);
          if (flags & endStreamFlag) {
            const end = endStreamFromJson(data);
            if (end.error) throw end.error;
            return;
          }
          yield fromBinary(method.output, data);
        }
        throw new ConnectError("stream closed without end-stream", Code.Unavailable);
      }
      return { stream: true, service: method.parent, method, header: responseHeader, trailer: new Headers(),
        message: messages() } as StreamResponse<I, O>;
    },
  };
}

/** Binary messages from the socket in order; ends when the socket closes. */
function messageQueue(socket: WebSocket): AsyncIterable<Uint8Array> {
  const inbox = asyncQueue<Uint8Array>();
  socket.addEventListener("message", (e) => inbox.push(new Uint8Array(e.data as ArrayBuffer)));
  socket.addEventListener("close", () => inbox.close());
  return inbox;
}
