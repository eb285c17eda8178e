// Inputs for the decoder property tests: valid protobuf messages of any schema, built at random
// from its descriptor, and mutations of valid encodings (flipped, overwritten, cut, grown,
// repeated and spliced bytes). A seeded generator, so a failing run names the seed to replay.
import { create, toBinary, type DescField, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";

export type Rng = () => number;

/** mulberry32: small, fast, good enough to vary test inputs. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const int = (r: Rng, min: number, max: number) => min + Math.floor(r() * (max - min + 1));
const pick = <T>(r: Rng, items: readonly T[]): T => items[int(r, 0, items.length - 1)];

export function randomBytes(r: Rng, max: number): Uint8Array {
  return Uint8Array.from({ length: int(r, 0, max) }, () => int(r, 0, 255));
}

const STRINGS = ["", "a", "alice", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n", "candidate:1 1 udp 1 10.0.0.1 5000 typ host",
  "{\"candidate\":\"candidate:1\"}", "\u0000", "é", "😀", "x".repeat(300)];

function randomString(r: Rng): string {
  if (r() < 0.6) return pick(r, STRINGS);
  return Array.from({ length: int(r, 0, 24) }, () => String.fromCharCode(int(r, 0, r() < 0.9 ? 127 : 0xd7ff))).join("");
}

function randomScalar(r: Rng, type: ScalarType): unknown {
  const edge = r() < 0.3;
  switch (type) {
    case ScalarType.STRING: return randomString(r);
    case ScalarType.BYTES: return randomBytes(r, 48);
    case ScalarType.BOOL: return r() < 0.5;
    case ScalarType.DOUBLE: return edge ? pick(r, [0, -0, Infinity, -Infinity, NaN, 1e308]) : (r() - 0.5) * 1e6;
    case ScalarType.FLOAT: return edge ? pick(r, [0, Infinity, NaN]) : Math.fround((r() - 0.5) * 1e4);
    case ScalarType.INT32: case ScalarType.SINT32: case ScalarType.SFIXED32:
      return edge ? pick(r, [0, -1, 2147483647, -2147483648]) : int(r, -1000, 1000);
    case ScalarType.UINT32: case ScalarType.FIXED32:
      return edge ? pick(r, [0, 4294967295]) : int(r, 0, 100000);
    case ScalarType.INT64: case ScalarType.SINT64: case ScalarType.SFIXED64:
      return edge ? pick(r, [0n, -1n, 9223372036854775807n, -9223372036854775808n]) : BigInt(int(r, -1e9, 1e9));
    case ScalarType.UINT64: case ScalarType.FIXED64:
      return edge ? pick(r, [0n, 18446744073709551615n]) : BigInt(int(r, 0, 1e9));
  }
}

function randomEnum(r: Rng, field: { enum: { values: readonly { number: number }[] } }): number {
  // Mostly known values; sometimes one the schema does not name (open enums keep it).
  return r() < 0.9 ? pick(r, field.enum.values).number : int(r, -5, 1000);
}

function randomFieldValue(r: Rng, field: DescField, depth: number): unknown {
  switch (field.fieldKind) {
    case "scalar": return randomScalar(r, field.scalar);
    case "enum": return randomEnum(r, field);
    case "message": return randomInit(field.message, r, depth + 1);
    case "list": {
      const n = int(r, 0, depth > 1 ? 1 : 4);
      return Array.from({ length: n }, () => field.listKind === "scalar" ? randomScalar(r, field.scalar)
        : field.listKind === "enum" ? randomEnum(r, field) : randomInit(field.message, r, depth + 1));
    }
    case "map": {
      const entries: [unknown, unknown][] = [];
      for (let i = int(r, 0, 3); i > 0; i--) {
        const key = randomScalar(r, field.mapKey);
        const value = field.mapKind === "scalar" ? randomScalar(r, field.scalar)
          : field.mapKind === "enum" ? randomEnum(r, field) : randomInit(field.message, r, depth + 1);
        entries.push([typeof key === "bigint" || typeof key === "boolean" ? String(key) : key, value]);
      }
      return Object.fromEntries(entries);
    }
  }
}

/** The init of a random message of `schema`: fields set or not, oneofs on one case or none. */
export function randomInit<S extends DescMessage>(schema: S, r: Rng, depth = 0): MessageInitShape<S> {
  const init: Record<string, unknown> = {};
  if (depth > 3) return init as MessageInitShape<S>;
  for (const member of schema.members) {
    if (member.kind === "oneof") {
      if (r() < 0.8) {
        const field = pick(r, member.fields);
        init[member.localName] = { case: field.localName, value: randomFieldValue(r, field, depth) };
      }
    } else if (r() < 0.6) {
      init[member.localName] = randomFieldValue(r, member, depth);
    }
  }
  return init as MessageInitShape<S>;
}

export function randomEncoding(schema: DescMessage, r: Rng): Uint8Array {
  return toBinary(schema, create(schema, randomInit(schema, r)));
}

/** One to four random edits of `bytes`; `other` is spliced in by one of them. */
export function mutate(bytes: Uint8Array, r: Rng, other?: Uint8Array): Uint8Array {
  let out: Uint8Array = Uint8Array.from(bytes);
  for (let edits = int(r, 1, 4); edits > 0; edits--) {
    const at = int(r, 0, out.length);
    switch (int(r, 0, 6)) {
      case 0: // flip bits of one byte
        if (out.length) out[at % out.length] ^= 1 << int(r, 0, 7);
        break;
      case 1: // overwrite a byte with an edge value (varint continuation, wire types, 0xff)
        if (out.length) out[at % out.length] = pick(r, [0x00, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x08, 0x0f, 0x0c, int(r, 0, 255)]);
        break;
      case 2: // cut
        out = out.slice(0, at);
        break;
      case 3: // insert random bytes
        out = concat(out.slice(0, at), randomBytes(r, 8), out.slice(at));
        break;
      case 4: { // repeat a slice
        const end = int(r, at, out.length);
        out = concat(out.slice(0, end), out.slice(at, end), out.slice(end));
        break;
      }
      case 5: // splice another encoding in
        if (other) out = concat(out.slice(0, at), other.slice(int(r, 0, other.length)));
        break;
      case 6: // a length prefix that overstates what follows
        out = concat(out.slice(0, at), Uint8Array.of(0x0a, 0xff, 0xff, 0x03), out.slice(at));
        break;
    }
  }
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** Valid encodings of `schema` to draw from: building one costs more than decoding it. */
export function encodingPool(schema: DescMessage, size = 500, seed = 1): Uint8Array[] {
  const r = rng(seed);
  return Array.from({ length: size }, () => randomEncoding(schema, r));
}

/** For property runs: random bytes, a mutation of a valid encoding, or a valid encoding. */
export function decoderInput(pool: Uint8Array[], r: Rng): Uint8Array {
  const roll = r();
  if (roll < 0.2) return randomBytes(r, 64);
  const valid = pool[int(r, 0, pool.length - 1)];
  if (roll < 0.9) return mutate(valid, r, pool[int(r, 0, pool.length - 1)]);
  return valid;
}
