// Conversation ids and URLs: pure functions, no node needed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConversationType, conversationTarget, httpUrlOf, privateConversationId, wsUrlOf } from "../src/index.js";

test("privateConversationId sorts the two ids", () => {
  assert.equal(privateConversationId("bob", "alice"), "p:alice:bob");
  assert.equal(privateConversationId("alice", "bob"), "p:alice:bob");
  assert.equal(privateConversationId("Zed", "ann"), "p:Zed:ann"); // byte order: upper case first
  assert.equal(privateConversationId("me", "me"), "p:me:me");
});

test("conversationTarget gives the other party, the group, or nothing", () => {
  assert.deepEqual(conversationTarget("p:alice:bob", "alice"), { to: "bob", conversationType: ConversationType.CONVERSATION_TYPE_PRIVATE });
  assert.deepEqual(conversationTarget("p:alice:bob", "bob"), { to: "alice", conversationType: ConversationType.CONVERSATION_TYPE_PRIVATE });
  assert.deepEqual(conversationTarget("p:me:me", "me"), { to: "me", conversationType: ConversationType.CONVERSATION_TYPE_PRIVATE });
  assert.deepEqual(conversationTarget("g:team.1", "alice"), { to: "team.1", conversationType: ConversationType.CONVERSATION_TYPE_GROUP });
  assert.equal(conversationTarget("s:news", "alice"), undefined);
  assert.equal(conversationTarget("g:", "alice"), undefined);
  assert.equal(conversationTarget("p:alice", "alice"), undefined);
});

test("wsUrlOf and httpUrlOf are inverses", () => {
  assert.equal(wsUrlOf("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
  assert.equal(wsUrlOf("https://im.example.com/"), "wss://im.example.com/ws");
  assert.equal(wsUrlOf("https://example.com/im?x=1"), "wss://example.com/im/ws");
  assert.equal(httpUrlOf(wsUrlOf("http://127.0.0.1:8080")), "http://127.0.0.1:8080");
});
