// The generated service descriptors (proto/gen, TypeScript) for the benchmarks' Connect clients,
// and the clients of this Worker built from them.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { build } from "esbuild";
import { mkdirSync, rmSync } from "node:fs";
import http from "node:http";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = resolve(import.meta.dirname, "..");

/**
 * Bundles the descriptors of `source` (the tree or exported commit a wrangler dev serves) — not
 * their packages, which resolve from this project's node_modules — and imports them. The bundle
 * is named for this process and removed once imported, so runs side by side (bench and load)
 * never load each other's.
 */
export async function loadProtos(source = ROOT) {
  const outfile = join(ROOT, `node_modules/.cache/edge-voice-bench/protos-${process.pid}.mjs`);
  mkdirSync(resolve(outfile, ".."), { recursive: true });
  await build({
    stdin: {
      contents: `export { SignalingService } from "./proto/gen/proto/rpc/webrtc/v1/signaling_pb";
        export { VoiceService } from "./proto/gen/protocol/voice/v1/voice_pb";`,
      resolveDir: source, loader: "ts",
    },
    bundle: true, packages: "external", format: "esm", platform: "node", outfile, logLevel: "warning",
  });
  try {
    return await import(pathToFileURL(outfile).href);
  } finally {
    rmSync(outfile, { force: true });
  }
}

/**
 * Viam SignalingService and Voice clients of the Worker at `baseUrl`, over HTTP/1.1 (what browsers
 * and the Viam SDK use on a Worker). Viam speaks Connect unless `viam` is "grpc-web" (the Viam
 * SDK's own protocol). With `ownAgent` the clients keep their connections in a keep-alive pool of
 * their own, which `close()` destroys; otherwise they share Node's global agent.
 */
export function workerClients(protos, baseUrl, { viam = "connect", ownAgent = false } = {}) {
  const agent = ownAgent ? new http.Agent({ keepAlive: true, maxSockets: Infinity }) : null;
  const options = { baseUrl, httpVersion: "1.1", ...(agent && { nodeOptions: { agent } }) };
  const connect = createConnectTransport(options);
  return {
    signaling: createClient(protos.SignalingService, viam === "grpc-web" ? createGrpcWebTransport(options) : connect),
    voice: createClient(protos.VoiceService, connect),
    close() { agent?.destroy(); },
  };
}
