import { Frame } from "./gen/clientpb/client.js";
import { ActorimError, ClientErrorCode } from "./errors.js";

/** The two encodings of a Frame (protocol.md, "Encodings"). */
export type Codec = "json" | "proto";

/** The WebSocket subprotocol of each codec. */
export const subprotocols: Record<Codec, string> = {
  json: "actorim.v1.json",
  proto: "actorim.v1.proto",
};

// The numbers of client.proto are uint32 fields and enums, so a negative
// number anywhere in a frame is an enum the generated code did not recognize
// (ts-proto's UNRECOGNIZED, -1, from an unknown name or number): the server
// would refuse it, and toJSON would write "UNRECOGNIZED". Returns its path.
function negativeAt(v: unknown, path: string): string | undefined {
  if (typeof v === "number") return v < 0 ? path : undefined;
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return undefined;
  for (const [k, x] of Object.entries(v)) {
    const p = negativeAt(x, path + "." + k);
    if (p) return p;
  }
  return undefined;
}

/**
 * Throws an ActorimError (CLIENT_INVALID) when the frame cannot be sent: it
 * holds an unrecognized enum value (-1, UNRECOGNIZED) or a negative number.
 */
export function checkFrame(f: Frame): void {
  const p = negativeAt(f, "frame");
  if (p) throw new ActorimError(ClientErrorCode.Invalid, `${p}: an unrecognized enum value or a negative number`);
}

/**
 * Encodes a frame: a string (proto3 JSON, a text message) or bytes (proto, a
 * binary message). Throws an ActorimError (CLIENT_INVALID) for a frame that
 * holds an unrecognized enum (see checkFrame).
 */
export function encodeFrame(codec: Codec, f: Frame): string | Uint8Array {
  checkFrame(f);
  return codec === "json" ? JSON.stringify(Frame.toJSON(f)) : Frame.encode(f).finish();
}

/**
 * Decodes one WebSocket message with the codec. Unknown fields are ignored,
 * so a newer server works with this client (an unknown oneof member leaves
 * the oneof undefined; an unknown enum is its number in proto and
 * UNRECOGNIZED, -1, in JSON). Throws on a malformed frame.
 */
export function decodeFrame(codec: Codec, data: string | ArrayBuffer | Uint8Array): Frame {
  if (codec === "json") {
    const text = typeof data === "string" ? data : new TextDecoder().decode(data);
    const v: unknown = JSON.parse(text);
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new SyntaxError("a JSON frame must be an object");
    return Frame.fromJSON(v);
  }
  const bytes =
    typeof data === "string" ? new TextEncoder().encode(data) : data instanceof Uint8Array ? data : new Uint8Array(data);
  return Frame.decode(bytes);
}
