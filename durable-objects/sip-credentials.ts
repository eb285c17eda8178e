// SIP account passwords: salted PBKDF2-SHA-256 through WebCrypto, never stored in clear.
// The iteration count is stored with each hash, so raising SIP_PBKDF2_ITERATIONS later leaves
// existing accounts verifiable (and they are re-hashed when they register again).
import { SIP_PBKDF2_ITERATIONS } from "../model/limits";

export interface PasswordHash {
  hash: Uint8Array;
  salt: Uint8Array;
  iterations: number;
}

const SALT_BYTES = 16;
const HASH_BITS = 256;
const utf8 = new TextEncoder();

export async function hashPassword(password: string, iterations = SIP_PBKDF2_ITERATIONS): Promise<PasswordHash> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  return { hash: await derive(password, salt, iterations), salt, iterations };
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const candidate = await derive(password, stored.salt, stored.iterations);
  // Constant time: how much of a guess matches must not show in how long the answer takes.
  return candidate.byteLength === stored.hash.byteLength && crypto.subtle.timingSafeEqual(candidate, stored.hash);
}

/**
 * A fast fingerprint of a password already verified against `stored`, so an account object need
 * not spend 100 000 PBKDF2 iterations on every RPC of a client sending Basic credentials. It is
 * salted with the account's salt and kept only in the object's memory, never stored.
 */
export async function fingerprint(password: string, stored: PasswordHash): Promise<Uint8Array> {
  const input = new Uint8Array(stored.salt.byteLength + utf8.encode(password).byteLength);
  input.set(stored.salt, 0);
  input.set(utf8.encode(password), stored.salt.byteLength);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", input));
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", utf8.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, HASH_BITS);
  return new Uint8Array(bits);
}
