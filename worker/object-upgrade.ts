// The one way a door hands a client's WebSocket upgrade to a Durable Object (the audio relay's and
// LiveKit's rooms). The door has checked the token; the object learns what the door vouches for
// from headers only the door sets (a client's own values are overwritten, which is why the object
// may trust them), and never sees the token itself, in a header or in `?access_token=`.

/** What a Durable Object stub offers for an upgrade. */
interface UpgradeTarget {
  fetch(request: Request): Promise<Response>;
}

export function forwardUpgrade(request: Request, object: UpgradeTarget, vouched: Record<string, string>): Promise<Response> {
  const headers = new Headers(request.headers);
  headers.delete("authorization");
  for (const [name, value] of Object.entries(vouched)) headers.set(name, value);
  const url = new URL(request.url);
  url.searchParams.delete("access_token");
  return object.fetch(new Request(url, { headers }));
}
