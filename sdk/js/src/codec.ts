import { fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import { FrameSchema, type Frame } from "./gen/clientpb/client_pb.js";

/** The two encodings of a Frame (protocol.md, "Encodings"). */
export type Codec = "json" | "proto";

/** The WebSocket subprotocol of each codec. */
export const subprotocols: Record<Codec, string> = {
  json: "actorim.v1.json",
  proto: "actorim.v1.proto",
};

/** Encodes a frame: a string (JSON, a text message) or bytes (proto, a binary message). */
export function encodeFrame(codec: Codec, f: Frame): string | Uint8Array {
  return codec === "json" ? toJsonString(FrameSchema, f) : toBinary(FrameSchema, f);
}

/**
 * Decodes one WebSocket message with the codec. Unknown fields are ignored,
 * so a newer server works with this client. Throws on a malformed frame.
 */
export function decodeFrame(codec: Codec, data: string | ArrayBuffer | Uint8Array): Frame {
  if (codec === "json") {
    const text = typeof data === "string" ? data : new TextDecoder().decode(data);
    return fromJsonString(FrameSchema, text, { ignoreUnknownFields: true });
  }
  const bytes =
    typeof data === "string" ? new TextEncoder().encode(data) : data instanceof Uint8Array ? data : new Uint8Array(data);
  return fromBinary(FrameSchema, bytes);
}
