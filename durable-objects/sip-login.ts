// A SIP account's login: its password (a salted PBKDF2 hash in the account's SQLite, see
// sip-credentials.ts), the fingerprint of the last verified password (memory only), the throttle of
// wrong passwords (model/login-throttle.ts) and the addresses its owner logged in from, so the
// owner is not locked out by someone else's guessing. The throttle is stored with each failure: a
// reset or a deploy must not hand a guesser a fresh budget. Those writes are bounded by the
// throttle itself (20, then one a minute per account; a refused guess writes nothing).
import { Code } from "@connectrpc/connect";
import { MAX_KNOWN_LOGIN_ADDRESSES } from "../model/limits";
import { mayTryLogin, newLoginThrottle, recordFailedLogin, type LoginThrottle } from "../model/login-throttle";
import { failure, success, type Result } from "../model/result";
import { fingerprint, hashPassword, sameBytes, verifyPassword, type PasswordHash } from "./sip-credentials";

export const LOGIN_SCHEMA = `
  CREATE TABLE IF NOT EXISTS credentials (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    hash BLOB NOT NULL,
    salt BLOB NOT NULL,
    iterations INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS known_addresses (
    address TEXT PRIMARY KEY,
    at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS login_throttle (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL
  );
`;

/** A known address is written again at most this often (its time orders the ones kept). */
const KNOWN_ADDRESS_REFRESH_MS = 86_400_000;

export class SipLogin {
  private password: PasswordHash | undefined;
  /** Fingerprint of the password last verified; memory only (see sip-credentials.ts). */
  private verified: Uint8Array | undefined;
  private throttle: LoginThrottle | undefined;

  /** Reads the stored password; the tables must exist (LOGIN_SCHEMA). */
  constructor(private readonly sql: SqlStorage) {
    const cred = sql.exec<{ hash: ArrayBuffer; salt: ArrayBuffer; iterations: number }>(
      "SELECT hash, salt, iterations FROM credentials WHERE id = 1").toArray()[0];
    this.password = cred ? { hash: new Uint8Array(cred.hash), salt: new Uint8Array(cred.salt), iterations: cred.iterations } : undefined;
    const stored = sql.exec<{ body: string }>("SELECT body FROM login_throttle WHERE id = 1").toArray()[0];
    if (stored) {
      const { account, addresses } = JSON.parse(stored.body) as { account: LoginThrottle["account"]; addresses: [string, LoginThrottle["account"]][] };
      this.throttle = { account, addresses: new Map(addresses) };
    }
  }

  /** Whether the account has a password, i.e. exists. */
  get registered(): boolean {
    return this.password !== undefined;
  }

  /** Stores a password hashed beforehand (hashPassword), replacing any earlier one. */
  store(hashed: PasswordHash): void {
    this.sql.exec("INSERT OR REPLACE INTO credentials (id, hash, salt, iterations, updated_at) VALUES (1, ?, ?, ?, ?)",
      hashed.hash, hashed.salt, hashed.iterations, Date.now());
    this.password = hashed;
    this.verified = undefined;
  }

  /** Checks a password from a client `address` (CF-Connecting-IP), within the throttle of failed
   * logins: unauthenticated when wrong, resource_exhausted when this address or account has failed
   * too often. */
  async check(password: string, address: string): Promise<Result<void>> {
    const now = Date.now();
    const throttle = this.throttle ??= newLoginThrottle(now);
    const seenAt = this.knownSince(address);
    const allowed = mayTryLogin(throttle, address, seenAt !== undefined, now);
    if (!allowed.ok) return allowed;
    if (await this.matches(password)) {
      this.rememberAddress(address, seenAt, now);
      return success(undefined);
    }
    this.throttle = recordFailedLogin(this.throttle ?? throttle, address, Date.now());
    this.sql.exec("INSERT OR REPLACE INTO login_throttle (id, body) VALUES (1, ?)",
      JSON.stringify({ account: this.throttle.account, addresses: [...this.throttle.addresses] }));
    return failure(Code.Unauthenticated, "wrong account name or password");
  }

  private async matches(password: string): Promise<boolean> {
    const stored = this.password;
    if (!stored) {
      // As slow as a real check, so response times do not tell which accounts exist.
      await hashPassword(password);
      return false;
    }
    const print = await fingerprint(password, stored);
    if (this.verified && sameBytes(print, this.verified)) return true;
    const ok = await verifyPassword(password, stored);
    if (ok && this.password === stored) this.verified = print;
    return ok;
  }

  /** When the owner last logged in from `address` (as written), or undefined for an unknown one. */
  private knownSince(address: string): number | undefined {
    return this.sql.exec<{ at: number }>("SELECT at FROM known_addresses WHERE address = ?", address).toArray()[0]?.at;
  }

  /** The owner's addresses, newest first, bounded; written only when one is new or a day old. */
  private rememberAddress(address: string, seenAt: number | undefined, now: number): void {
    if (seenAt !== undefined && now - seenAt < KNOWN_ADDRESS_REFRESH_MS) return;
    this.sql.exec("INSERT OR REPLACE INTO known_addresses (address, at) VALUES (?, ?)", address, now);
    this.sql.exec("DELETE FROM known_addresses WHERE address NOT IN (SELECT address FROM known_addresses ORDER BY at DESC LIMIT ?)",
      MAX_KNOWN_LOGIN_ADDRESSES);
  }
}
