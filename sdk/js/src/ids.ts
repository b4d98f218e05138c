import { ConversationType } from "./gen/clientpb/client.js";

/**
 * The id of the private conversation of users a and b: "p:" and the two ids
 * in byte order joined by ":" (protocol.md, "Sending messages"). User ids
 * are ASCII, so JavaScript's string order is their byte order.
 */
export function privateConversationId(a: string, b: string): string {
  return a < b ? `p:${a}:${b}` : `p:${b}:${a}`;
}

/** Where a conversation's messages go: the `to` and conversation type of send and typing. */
export interface ConversationTarget {
  to: string;
  conversationType: ConversationType;
}

/**
 * The target of conversation `conversationId` for user `me`: the other user
 * of "p:a:b" (me for a note to oneself), the group of "g:<id>". Undefined for
 * broadcast channels ("s:") and anything else, where nobody can send.
 */
export function conversationTarget(conversationId: string, me: string): ConversationTarget | undefined {
  if (conversationId.startsWith("g:") && conversationId.length > 2) {
    return { to: conversationId.slice(2), conversationType: ConversationType.CONVERSATION_TYPE_GROUP };
  }
  if (conversationId.startsWith("p:")) {
    const [a, b] = conversationId.slice(2).split(":");
    if (!a || !b) return undefined;
    return { to: a === me ? b : a, conversationType: ConversationType.CONVERSATION_TYPE_PRIVATE };
  }
  return undefined;
}

/** The WebSocket URL of a node's HTTP base: http://h:p becomes ws://h:p/ws (https: wss:). */
export function wsUrlOf(httpUrl: string): string {
  const u = new URL(httpUrl);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.pathname = u.pathname.replace(/\/$/, "") + "/ws";
  u.search = "";
  u.hash = "";
  return u.toString();
}
