// Viam's SDKs send session descriptions as base64 of the JSON RTCSessionDescriptionInit
// ({"type":"offer","sdp":"v=0..."}); other doors speak plain SDP. Viam-to-Viam calls pass the
// string through byte-exact; only a call that crosses to another door is translated.

/** The plain SDP inside a Viam-encoded description, or null if `text` is not one. */
export function sdpFromViam(text: string): string | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return null;
  try {
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    const json = JSON.parse(new TextDecoder().decode(bytes)) as { sdp?: unknown };
    return typeof json.sdp === "string" ? json.sdp : null;
  } catch {
    return null;
  }
}

/** Encodes plain SDP the way the Viam SDKs expect it. */
export function sdpToViam(type: "offer" | "answer", sdp: string): string {
  const bytes = new TextEncoder().encode(JSON.stringify({ type, sdp }));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}
