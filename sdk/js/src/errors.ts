import { ErrorCode, type Error as ErrorFrame } from "./gen/clientpb/client.js";

/**
 * Codes the SDK itself gives, beside the server's `ERR_*` codes (protocol.md,
 * "Error codes").
 */
export const ClientErrorCode = {
  /** The request got no answer within the request timeout. */
  Timeout: "CLIENT_TIMEOUT",
  /** The connection dropped before the request was answered. */
  Disconnected: "CLIENT_DISCONNECTED",
  /** The client was closed (close(), a kick, or a close code that forbids reconnecting). */
  Closed: "CLIENT_CLOSED",
  /** The server answered with a frame the request did not expect. */
  Protocol: "CLIENT_PROTOCOL",
  /** An HTTP call failed without a JSON error body (network, CORS, proxy). */
  Http: "CLIENT_HTTP",
  /** The SDK refused to send a frame: it holds an unrecognized enum value (UNRECOGNIZED, -1) or a negative number. */
  Invalid: "CLIENT_INVALID",
} as const;

/**
 * An error with a stable code: a server `ERR_*` code (an Error frame or an
 * HTTP error body) or one of {@link ClientErrorCode}.
 */
export class ActorimError extends Error {
  override readonly name = "ActorimError";
  constructor(
    readonly code: string,
    message: string,
    /** The server's retry hint (ERR_RATE_LIMITED; HTTP Retry-After). */
    readonly retryAfterMs?: number,
    /** The HTTP status of an HTTP error. */
    readonly status?: number,
  ) {
    super(`${code}: ${message}`);
  }

  /** The error an Error frame carries. */
  static fromFrame(e: ErrorFrame): ActorimError {
    return new ActorimError(
      // An unknown code is its number in proto and UNRECOGNIZED (-1) in JSON.
      (e.code >= 0 ? ErrorCode[e.code] : "ERR_UNRECOGNIZED") ?? `ERR_${e.code}`,
      e.message,
      e.retryAfterMs > 0 ? e.retryAfterMs : undefined,
    );
  }
}
