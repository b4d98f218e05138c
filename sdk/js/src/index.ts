// The actorim TypeScript SDK: a Client that keeps a connection to a node,
// the HTTP helpers, and the protocol's wire types (generated from
// protos/clientpb/client.proto). docs/js.md is the guide.
export {
  Client,
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  type ContentInit,
  type FrameBody,
  type SendOptions,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./client.js";
export { ActorimError, ClientErrorCode } from "./errors.js";
export { MemorySeqStore, LocalStorageSeqStore, type SeqStore } from "./store.js";
export { Backoff, type BackoffOptions } from "./backoff.js";
export { checkFrame, decodeFrame, encodeFrame, subprotocols, type Codec } from "./codec.js";
export { register, login, history, httpUrlOf, type LoginResult, type HttpOptions } from "./http.js";
export * from "./gen/clientpb/client.js";
export { privateConversationId, conversationTarget, wsUrlOf, type ConversationTarget } from "./ids.js";
