// ICE servers handed to clients: STUN by default, plus TURN with short-lived credentials when a
// TURN REST shared secret is configured (the scheme coturn implements as `use-auth-secret`:
// username = "<expiry unix time>:<identity>", credential = base64(HMAC-SHA1(secret, username))).
import { TURN_CREDENTIAL_TTL_S } from "./limits";

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

const DEFAULT_STUN = "stun:stun.l.google.com:19302";

function list(value: string | undefined): string[] {
  return (value ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

export async function iceServersFor(env: Env, identity: string, now = Date.now()): Promise<IceServer[]> {
  const stun = list(env.ICE_URLS);
  const servers: IceServer[] = [{ urls: stun.length ? stun : [DEFAULT_STUN] }];
  const turnUrls = list(env.TURN_URLS);
  if (env.TURN_SECRET && turnUrls.length) {
    const username = `${Math.floor(now / 1000) + TURN_CREDENTIAL_TTL_S}:${identity}`;
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(env.TURN_SECRET),
      { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
    const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(username));
    const credential = btoa(String.fromCharCode(...new Uint8Array(mac)));
    servers.push({ urls: turnUrls, username, credential });
  }
  return servers;
}
