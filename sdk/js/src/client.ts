import {
  ConversationType,
  Platform,
  type Content,
  type Conversation,
  type Entry,
  type FriendList,
  type Frame,
  type GroupInfo,
  type GroupMembers,
  type GroupRequest,
  type HistoryResult,
  type JoinPolicy,
  type Kick,
  type LoginOK,
  type Message,
  type Pong,
  type Presence,
  type Profile,
  type Result,
  type Send,
  type SendAck,
  type SyncResult,
  type TypingSignal,
  type UserSearchResult,
} from "./gen/clientpb/client.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { checkFrame, decodeFrame, encodeFrame, subprotocols, type Codec } from "./codec.js";
import { Emitter } from "./emitter.js";
import { ActorimError, ClientErrorCode } from "./errors.js";
import { httpUrlOf } from "./http.js";
import { MemorySeqStore, type SeqStore } from "./store.js";

/** The connection's state, reported by the "state" event. */
export type ConnectionState = "connecting" | "online" | "offline" | "closed";

/** What the client needs of a WebSocket: the browser's, or Node's `ws` package. */
export interface WebSocketLike {
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
}

/** A WebSocket class: globalThis.WebSocket in browsers, `ws`'s default export in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The events of a Client and their argument. */
export interface ClientEvents {
  /** A timeline entry carrying a message (not an event), in seq order, once. Listeners may be async. */
  message: Entry;
  /** A timeline entry carrying a system event (receipt, recall, group, friend...), in seq order, once. */
  event: Entry;
  /** A Signal: someone is or stopped typing. */
  typing: TypingSignal;
  /** A Signal: a friend's presence changed. */
  presence: Presence;
  /** A Signal: a friend (or this user, on another device) changed their profile. */
  profile: Profile;
  /** The server kicked this connection; the client will not reconnect. */
  kick: Kick;
  state: ConnectionState;
  /** Every successful login (the first and each reconnect). */
  login: LoginOK;
  /** Errors nobody awaits: Error frames with id 0, a failing listener, a store that failed, a refused login. */
  error: unknown;
}

/** Options of a Client. Only url, deviceId and a token are required. */
export interface ClientOptions {
  /** ws://host:port/ws or wss://host/ws. */
  url: string;
  /** The HTTP API's base; default derived from url (ws://h:p/ws becomes http://h:p). */
  httpUrl?: string;
  /** The token of Login (from POST /v1/login or the app's server). */
  token?: string;
  /** Called before every connection attempt for a fresh token; takes precedence over token. */
  getToken?: () => string | Promise<string>;
  /** This installation's stable id: 1-64 characters of [A-Za-z0-9_.@:-]. */
  deviceId: string;
  /** Default PLATFORM_WEB. */
  platform?: Platform;
  /** The subprotocol: "proto" (binary protobuf, default) or "json". */
  codec?: Codec;
  /** The WebSocket class; default globalThis.WebSocket (Node 20 has none: pass `ws`). */
  WebSocket?: WebSocketConstructor;
  /** Where the last processed seq is kept; default a MemorySeqStore. */
  store?: SeqStore;
  /** Reconnect delays; default 250 ms doubling to 15 s, full jitter. */
  backoff?: BackoffOptions;
  /** When the store holds no seq (a new device): "latest" streams only new entries (default), "start" the whole timeline. */
  newDevice?: "latest" | "start";
  /** How long a request waits for its answer (and for the connection), ms. Default 10000. */
  requestTimeoutMs?: number;
  /** At most one PushAck per this many ms, ms. Default 100. */
  ackIntervalMs?: number;
  /** ...unless this many entries were processed since the last ack. Default 50. */
  ackEvery?: number;
}

/** The options of send. */
export interface SendOptions {
  /** Default CONVERSATION_TYPE_PRIVATE; CONVERSATION_TYPE_GROUP sends to the group `to`. */
  conversationType?: ConversationType;
  /** The message's id among the sender's; generated when absent. Reuse it only to retry the same message. */
  clientMsgId?: string;
  /** Group messages: user ids to notify, or "all". */
  mentions?: string[];
  /** Deliver without alerting: stored silent for every recipient, and no offline push is made for it. */
  silent?: boolean;
}

/** Content of a message: a string is text; otherwise a Content, e.g. `{ kind: { $case: "emoji", value: "👍" } }`. */
export type ContentInit = string | Content;

/** The body of a request frame, e.g. `{ $case: "sync", value: { afterSeq: 0n, limit: 0 } }`. */
export type FrameBody = Frame["body"];

interface Pending {
  resolve(f: Frame): void;
  reject(e: unknown): void;
  timer?: ReturnType<typeof setTimeout>;
}

interface Outgoing {
  send: Send;
  promise: Promise<SendAck>;
  resolve(a: SendAck): void;
  reject(e: unknown): void;
  /** The request id of the attempt in flight on the current connection. */
  reqId?: number;
  retryTimer?: ReturnType<typeof setTimeout>;
}

// Close codes after which the client does not reconnect by itself
// (protocol.md, "Close codes").
const FATAL_CLOSE: Record<number, string> = {
  1000: "closed normally (logout)",
  1009: "a frame far beyond the size limit",
  4001: "the token was refused or revoked",
  4003: "kicked",
  4005: "too many undecodable frames",
};

let fallbackCounter = 0;
function newClientMsgId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  const r = () => Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, "0");
  return `${r()}${r()}-${Date.now().toString(36)}-${(fallbackCounter++).toString(36)}`;
}

/**
 * A connection to an actorim node that stays up: it logs in, resumes the
 * push stream after the last processed seq, reconnects with backoff,
 * delivers each timeline entry once and in order, acknowledges in batches,
 * and retries sends across reconnects under the same client message id.
 */
export class Client extends Emitter<ClientEvents> {
  readonly httpUrl: string;
  readonly codec: Codec;
  /** The user id of the last login ("" before the first). */
  userId = "";
  /** The last LoginOK. */
  loginOk?: LoginOK;

  readonly #o: ClientOptions;
  readonly #WS: WebSocketConstructor;
  readonly #store: SeqStore;
  readonly #backoff: Backoff;
  readonly #timeout: number;
  readonly #ackInterval: number;
  readonly #ackEvery: number;

  #state: ConnectionState = "offline";
  #closed = false;
  #ws?: WebSocketLike;
  #loginId = 0;
  #nextId = 0;
  #pending = new Map<number, Pending>();
  #outbox = new Map<string, Outgoing>();
  #reconnectTimer?: ReturnType<typeof setTimeout>;
  #onlineWaiters = new Set<{ resolve(): void; reject(e: unknown): void }>();
  // The last state given to setDeviceState: the server keeps it per
  // connection (every login starts in the foreground), so a login re-sends
  // a background state.
  #background = false;

  // The push stream.
  #loaded = false;
  #lastSeq?: bigint; // highest seq processed by the app
  #queue: { ws: WebSocketLike; entry: Entry }[] = [];
  #processing = false;
  #maxPushed = 0n; // highest seq pushed on this connection
  #ackedSeq = 0n; // highest seq acknowledged on this connection
  #unacked = 0;
  #lastAckAt = 0;
  #ackTimer?: ReturnType<typeof setTimeout>;

  constructor(o: ClientOptions) {
    super();
    this.#o = o;
    this.codec = o.codec ?? "proto";
    this.httpUrl = o.httpUrl ?? httpUrlOf(o.url);
    const WS = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new Error("actorim: no WebSocket: pass the WebSocket option (in Node, the ws package)");
    this.#WS = WS;
    this.#store = o.store ?? new MemorySeqStore();
    this.#backoff = new Backoff(o.backoff);
    this.#timeout = o.requestTimeoutMs ?? 10000;
    this.#ackInterval = o.ackIntervalMs ?? 100;
    this.#ackEvery = o.ackEvery ?? 50;
  }

  /** The connection's state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The highest timeline seq the app has processed (undefined before the first login of a new device). */
  get lastSeq(): bigint | undefined {
    return this.#lastSeq;
  }

  /** Sends not acknowledged yet (waiting for an answer or for the next connection). */
  get unackedSends(): number {
    return this.#outbox.size;
  }

  /**
   * Starts connecting (and keeps reconnecting) and resolves at the next
   * successful login. Rejects when the client closes first (close(), a
   * kick, a refused token).
   */
  connect(): Promise<LoginOK> {
    this.#closed = false;
    if (this.#state === "online" && this.loginOk) return Promise.resolve(this.loginOk);
    const p = this.#waitOnline(0).then(() => this.loginOk!);
    if (!this.#ws && this.#reconnectTimer === undefined) void this.#open();
    return p;
  }

  /** Drops the current connection and connects again at once (e.g. when the browser says it is online again). */
  reconnect(): void {
    if (this.#closed) return;
    if (this.#ws) this.#ws.close(4000, "reconnect");
    else {
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
      void this.#open();
    }
  }

  /**
   * Closes the connection for good after acknowledging what was processed.
   * Sends and requests not answered are rejected with CLIENT_CLOSED.
   */
  close(): void {
    this.#flushAck();
    this.#shutdown(new ActorimError(ClientErrorCode.Closed, "client closed"));
  }

  /** Sends Logout (the server closes with 1000) and closes the client. */
  logout(): void {
    this.#flushAck();
    if (this.#ws && this.#state === "online") this.#write({ id: 0, body: { $case: "logout", value: {} } });
    this.close();
  }

  // --- sending messages -----------------------------------------------------

  /**
   * Sends a message and resolves with its SendAck (the message is durably
   * stored). Unanswered when the connection drops, it is sent again with
   * the same clientMsgId after the next login, so the server stores it once.
   * A refusal rejects with an ActorimError carrying the server's code;
   * ERR_RATE_LIMITED and ERR_UNAVAILABLE are retried by the client itself.
   */
  send(to: string, content: ContentInit, o: SendOptions = {}): Promise<SendAck> {
    if (this.#closed) return Promise.reject(new ActorimError(ClientErrorCode.Closed, "client closed"));
    const clientMsgId = o.clientMsgId ?? newClientMsgId();
    const existing = this.#outbox.get(clientMsgId);
    if (existing) return existing.promise;
    const send: Send = {
      clientMsgId,
      to,
      conversationType: o.conversationType ?? ConversationType.CONVERSATION_TYPE_UNSPECIFIED,
      content: typeof content === "string" ? { kind: { $case: "text", value: content } } : content,
      mentions: o.mentions ?? [],
      silent: o.silent ?? false,
    };
    try {
      checkFrame({ id: 0, body: { $case: "send", value: send } });
    } catch (e) {
      return Promise.reject(e);
    }
    let resolve!: (a: SendAck) => void, reject!: (e: unknown) => void;
    const promise = new Promise<SendAck>((res, rej) => ((resolve = res), (reject = rej)));
    const out: Outgoing = { send, promise, resolve, reject };
    this.#outbox.set(clientMsgId, out);
    if (this.#state === "online") this.#transmit(out);
    return promise;
  }

  #transmit(out: Outgoing): void {
    clearTimeout(out.retryTimer);
    out.retryTimer = undefined;
    const id = this.#newId();
    out.reqId = id;
    // No timeout: a send waits for its answer or for the connection to drop,
    // after which the next login sends it again.
    this.#pending.set(id, {
      resolve: (f) => this.#onSendAnswer(out, id, f),
      reject: () => {
        if (out.reqId === id) out.reqId = undefined;
      },
    });
    this.#write({ id, body: { $case: "send", value: out.send } });
  }

  #onSendAnswer(out: Outgoing, id: number, f: Frame): void {
    if (out.reqId !== id) return;
    out.reqId = undefined;
    const cmid = out.send.clientMsgId;
    if (f.body?.$case === "sendAck") {
      this.#outbox.delete(cmid);
      if (f.body.value.clientMsgId !== cmid) {
        out.reject(new ActorimError(ClientErrorCode.Protocol, `ack of ${f.body.value.clientMsgId} for ${cmid}`));
      } else {
        out.resolve(f.body.value);
      }
      return;
    }
    if (f.body?.$case === "error") {
      const e = ActorimError.fromFrame(f.body.value);
      if (e.code === "ERR_RATE_LIMITED" || e.code === "ERR_UNAVAILABLE") {
        out.retryTimer = setTimeout(() => {
          out.retryTimer = undefined;
          if (this.#state === "online" && this.#outbox.get(cmid) === out && out.reqId === undefined) this.#transmit(out);
        }, e.retryAfterMs ?? 1000);
        return;
      }
      this.#outbox.delete(cmid);
      out.reject(e);
      return;
    }
    this.#outbox.delete(cmid);
    out.reject(new ActorimError(ClientErrorCode.Protocol, `send answered with ${f.body?.$case}`));
  }

  // --- requests -------------------------------------------------------------

  /**
   * Sends one request frame (its body, a complete message, e.g.
   * `{ $case: "sync", value: { afterSeq: 0n, limit: 0 } }`)
   * once the client is online and resolves with the answer frame. An Error
   * answer rejects with an ActorimError; so do a timeout (CLIENT_TIMEOUT)
   * and a connection that drops first (CLIENT_DISCONNECTED: not retried,
   * since only sends carry an id that makes a retry safe).
   */
  async request(body: FrameBody, o: { timeoutMs?: number } = {}): Promise<Frame> {
    checkFrame({ id: 0, body });
    const timeout = o.timeoutMs ?? this.#timeout;
    const deadline = Date.now() + timeout;
    if (this.#state !== "online") await this.#waitOnline(timeout);
    return new Promise<Frame>((resolve, reject) => {
      const id = this.#newId();
      const p: Pending = {
        resolve: (f) => {
          if (f.body?.$case === "error") reject(ActorimError.fromFrame(f.body.value));
          else resolve(f);
        },
        reject,
        timer: setTimeout(() => {
          this.#pending.delete(id);
          reject(new ActorimError(ClientErrorCode.Timeout, `no answer to ${body?.$case} in ${timeout} ms`));
        }, Math.max(0, deadline - Date.now())),
      };
      this.#pending.set(id, p);
      this.#write({ id, body });
    });
  }

  async #result(body: FrameBody): Promise<Result> {
    const f = await this.request(body);
    if (f.body?.$case !== "result") throw new ActorimError(ClientErrorCode.Protocol, `expected result, got ${f.body?.$case}`);
    return f.body.value;
  }

  /** The caller's timeline entries after afterSeq, oldest first (does not move the push stream). */
  async sync(afterSeq: bigint, limit = 0): Promise<SyncResult> {
    const f = await this.request({ $case: "sync", value: { afterSeq, limit } });
    if (f.body?.$case !== "syncResult") throw new ActorimError(ClientErrorCode.Protocol, `expected syncResult, got ${f.body?.$case}`);
    return f.body.value;
  }

  /** One page of a conversation, newest first, entries below beforeSeq (0: from the newest). */
  async history(conversationId: string, page: { beforeSeq?: bigint; limit?: number } = {}): Promise<HistoryResult> {
    const f = await this.request({
      $case: "history",
      value: { conversationId, beforeSeq: page.beforeSeq ?? 0n, limit: page.limit ?? 0 },
    });
    if (f.body?.$case !== "historyResult")
      throw new ActorimError(ClientErrorCode.Protocol, `expected historyResult, got ${f.body?.$case}`);
    return f.body.value;
  }

  async ping(): Promise<Pong> {
    const f = await this.request({ $case: "ping", value: {} });
    if (f.body?.$case !== "pong") throw new ActorimError(ClientErrorCode.Protocol, `expected pong, got ${f.body?.$case}`);
    return f.body.value;
  }

  /** Marks a conversation read up to and including msgId (a read receipt in private chats). */
  async markRead(conversationId: string, msgId: bigint): Promise<void> {
    await this.#result({ $case: "read", value: { conversationId, msgId } });
  }

  /** Withdraws a message within the recall window. */
  async recall(conversationId: string, msgId: bigint): Promise<void> {
    await this.#result({ $case: "recall", value: { conversationId, msgId } });
  }

  /** Tells `to` (a user, or a group with CONVERSATION_TYPE_GROUP) that the caller is or stopped typing. */
  async typing(to: string, typing = true, conversationType = ConversationType.CONVERSATION_TYPE_UNSPECIFIED): Promise<void> {
    await this.#result({ $case: "typing", value: { to, typing, conversationType } });
  }

  /** The conversation list: pinned first, then newest first, with unread counts. */
  async conversations(): Promise<Conversation[]> {
    const r = await this.#result({ $case: "conversations", value: {} });
    return r.data?.$case === "conversations" ? r.data.value.conversations : [];
  }

  /** Pins or mutes a conversation on all the caller's devices. */
  async updateConversation(conversationId: string, flags: { pinned?: boolean; muted?: boolean }): Promise<void> {
    await this.#result({ $case: "conversationUpdate", value: { conversationId, ...flags } });
  }

  // Friends and the blacklist.

  async friendRequest(to: string, note = ""): Promise<void> {
    await this.#result({ $case: "friendRequest", value: { to, note } });
  }
  async friendAccept(from: string): Promise<void> {
    await this.#result({ $case: "friendRespond", value: { from, accept: true } });
  }
  async friendReject(from: string): Promise<void> {
    await this.#result({ $case: "friendRespond", value: { from, accept: false } });
  }
  async friendDelete(user: string): Promise<void> {
    await this.#result({ $case: "friendDelete", value: { user } });
  }
  /** Sets the caller's remark and/or category for a friend (only the fields given change). */
  async friendUpdate(user: string, f: { remark?: string; category?: string }): Promise<void> {
    await this.#result({ $case: "friendUpdate", value: { user, ...f } });
  }
  async friendList(): Promise<FriendList | undefined> {
    const r = await this.#result({ $case: "friendList", value: {} });
    return r.data?.$case === "friends" ? r.data.value : undefined;
  }
  async block(user: string): Promise<void> {
    await this.#result({ $case: "block", value: { user, blocked: true } });
  }
  async unblock(user: string): Promise<void> {
    await this.#result({ $case: "block", value: { user, blocked: false } });
  }
  /** friendsOnly: only friends may send the caller private messages. */
  async updateSettings(s: { friendsOnly?: boolean }): Promise<void> {
    await this.#result({ $case: "settings", value: s });
  }
  /** The online state of up to 200 users (friends only; others show offline). */
  async presence(users: string[]): Promise<Presence[]> {
    const r = await this.#result({ $case: "presenceQuery", value: { users } });
    return r.data?.$case === "presence" ? r.data.value.users : [];
  }

  // Profiles.

  /**
   * Changes the caller's own profile: only the fields given change, "" clears one.
   * extra is a JSON object (as text) the app owns. Resolves to the profile as stored.
   */
  async setProfile(p: { nickname?: string; avatarUrl?: string; extra?: string }): Promise<Profile | undefined> {
    const r = await this.#result({ $case: "setProfile", value: p });
    return r.data?.$case === "profile" ? r.data.value : undefined;
  }
  /** The profiles of up to 100 users, in the order asked; users who do not exist or blocked the caller are left out. */
  async getProfiles(users: string[]): Promise<Profile[]> {
    const r = await this.#result({ $case: "getProfiles", value: { users } });
    return r.data?.$case === "profiles" ? r.data.value.profiles : [];
  }
  /** Users by exact id or nickname prefix, case-insensitively; pass nextCursor back as cursor for the next page. */
  async searchUsers(query: string, page: { limit?: number; cursor?: string } = {}): Promise<UserSearchResult> {
    const r = await this.#result({ $case: "searchUsers", value: { query, limit: page.limit ?? 0, cursor: page.cursor ?? "" } });
    return r.data?.$case === "search" ? r.data.value : { users: [], nextCursor: "" };
  }

  // Offline push.

  /**
   * Records this device's push token for the app's push webhook (protocol.md,
   * "Offline push"), replacing the device's earlier one. provider is 1 to 32
   * characters of [a-z0-9_.-] ("apns", "fcm", ...), token at most 4096 bytes
   * of printable ASCII; otherwise ERR_BAD_REQUEST. The registration survives
   * disconnects; Logout removes it.
   */
  async registerPush(provider: string, token: string): Promise<void> {
    await this.#result({ $case: "registerPush", value: { provider, token } });
  }
  /** Removes this device's push token (RegisterPush with an empty token). */
  async unregisterPush(): Promise<void> {
    await this.#result({ $case: "registerPush", value: { provider: "", token: "" } });
  }
  /**
   * Tells the server whether the app runs in the background: a backgrounded
   * device still receives its Push frames but counts as offline for the push
   * webhook. The client remembers the last state and sends it again after
   * every reconnect (each login starts in the foreground). When the client
   * is not online (also before connect() and after close()), or the
   * connection drops before the answer, it resolves at once: the next login
   * sends it. Rejects only when the server refuses it.
   */
  async setDeviceState(background: boolean): Promise<void> {
    this.#background = background;
    if (this.#state !== "online") return;
    try {
      await this.#result({ $case: "deviceState", value: { background } });
    } catch (e) {
      if (e instanceof ActorimError && e.code === ClientErrorCode.Disconnected) return;
      throw e;
    }
  }
  /** The last state given to setDeviceState (false until then). */
  get background(): boolean {
    return this.#background;
  }

  // Groups.

  /** Any group operation (protocol.md, "Groups"), e.g. `group("g1", { $case: "muteAll", value: { on: true } })`. */
  group(groupId: string, op: GroupRequest["op"]): Promise<Result> {
    return this.#result({ $case: "group", value: { groupId, op } });
  }
  async createGroup(
    groupId: string,
    g: { name?: string; members?: string[]; joinPolicy?: JoinPolicy; avatarUrl?: string; notice?: string } = {},
  ): Promise<GroupInfo | undefined> {
    const value = {
      name: g.name ?? "",
      avatarUrl: g.avatarUrl ?? "",
      notice: g.notice ?? "",
      joinPolicy: g.joinPolicy ?? 0,
      members: g.members ?? [],
    };
    const r = await this.group(groupId, { $case: "create", value });
    return r.data?.$case === "group" ? r.data.value : undefined;
  }
  async groupInfo(groupId: string): Promise<GroupInfo | undefined> {
    const r = await this.group(groupId, { $case: "info", value: {} });
    return r.data?.$case === "group" ? r.data.value : undefined;
  }
  async inviteToGroup(groupId: string, users: string[]): Promise<void> {
    await this.group(groupId, { $case: "invite", value: { users } });
  }
  async joinGroup(groupId: string, note = ""): Promise<void> {
    await this.group(groupId, { $case: "join", value: { note } });
  }
  async leaveGroup(groupId: string): Promise<void> {
    await this.group(groupId, { $case: "leave", value: {} });
  }
  async kickFromGroup(groupId: string, users: string[]): Promise<void> {
    await this.group(groupId, { $case: "kick", value: { users } });
  }
  async groupMembers(groupId: string): Promise<GroupMembers | undefined> {
    const r = await this.group(groupId, { $case: "members", value: {} });
    return r.data?.$case === "members" ? r.data.value : undefined;
  }

  // --- the connection -------------------------------------------------------

  #newId(): number {
    this.#nextId = this.#nextId >= 0x7fffffff ? 1 : this.#nextId + 1;
    return this.#nextId;
  }

  #setState(s: ConnectionState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.emit("state", s, this.#reportError);
  }

  #reportError = (e: unknown): void => {
    if (this.listenerCount("error") > 0) this.emit("error", e, () => {});
  };

  #write(f: Frame): void {
    const ws = this.#ws;
    if (!ws) return;
    try {
      ws.send(encodeFrame(this.codec, f));
    } catch (e) {
      this.#reportError(e);
    }
  }

  #waitOnline(timeoutMs: number): Promise<void> {
    if (this.#closed) return Promise.reject(new ActorimError(ClientErrorCode.Closed, "client closed"));
    if (this.#state === "online") return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const w = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e: unknown) => (clearTimeout(timer), reject(e)),
      };
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          this.#onlineWaiters.delete(w);
          reject(new ActorimError(ClientErrorCode.Timeout, `not online within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.#onlineWaiters.add(w);
    });
  }

  async #open(): Promise<void> {
    if (this.#closed || this.#ws) return;
    this.#setState("connecting");
    let token: string;
    try {
      token = this.#o.getToken ? await this.#o.getToken() : (this.#o.token ?? "");
      if (!this.#loaded) {
        const s = await this.#store.load();
        if (this.#lastSeq === undefined) this.#lastSeq = s;
        this.#loaded = true;
      }
    } catch (e) {
      this.#reportError(e);
      this.#scheduleReconnect(this.#backoff.next());
      return;
    }
    if (this.#closed || this.#ws) return;
    let ws: WebSocketLike;
    try {
      ws = new this.#WS(this.#o.url, subprotocols[this.codec]);
    } catch (e) {
      this.#reportError(e);
      this.#scheduleReconnect(this.#backoff.next());
      return;
    }
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      this.#loginId = this.#newId();
      const lastSeq = this.#lastSeq ?? (this.#o.newDevice === "start" ? 0n : undefined);
      this.#write({
        id: this.#loginId,
        body: {
          $case: "login",
          value: { token, deviceId: this.#o.deviceId, platform: this.#o.platform ?? Platform.PLATFORM_WEB, lastSeq },
        },
      });
    };
    ws.onmessage = (ev) => {
      if (this.#ws !== ws) return;
      let f: Frame;
      try {
        f = decodeFrame(this.codec, ev.data);
      } catch (e) {
        this.#reportError(e);
        return;
      }
      this.#onFrame(ws, f);
    };
    ws.onerror = () => {}; // a close event follows
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#onClose(ev.code, ev.reason);
    };
  }

  #onFrame(ws: WebSocketLike, f: Frame): void {
    const b = f.body;
    switch (b?.$case) {
      case "push":
        for (const entry of b.value.entries) {
          if (entry.seq > this.#maxPushed) this.#maxPushed = entry.seq;
          this.#queue.push({ ws, entry });
        }
        void this.#pump();
        return;
      case "signal":
        if (b.value.kind?.$case === "typing") this.emit("typing", b.value.kind.value, this.#reportError);
        else if (b.value.kind?.$case === "presence") this.emit("presence", b.value.kind.value, this.#reportError);
        else if (b.value.kind?.$case === "profileChanged" && b.value.kind.value.profile)
          this.emit("profile", b.value.kind.value.profile, this.#reportError);
        return;
      case "kick":
        this.emit("kick", b.value, this.#reportError);
        return;
    }
    if (f.id !== 0 && f.id === this.#loginId && this.#state !== "online") {
      this.#onLoginAnswer(ws, f);
      return;
    }
    const p = f.id !== 0 ? this.#pending.get(f.id) : undefined;
    if (p) {
      this.#pending.delete(f.id);
      clearTimeout(p.timer);
      p.resolve(f);
      return;
    }
    if (b?.$case === "error") this.#reportError(ActorimError.fromFrame(b.value));
  }

  #onLoginAnswer(ws: WebSocketLike, f: Frame): void {
    if (f.body?.$case === "loginOk") {
      const ok = f.body.value;
      this.loginOk = ok;
      this.userId = ok.userId;
      // protocol.md: after login, lastSeq is streamFromSeq - 1 (it differs
      // from what was sent only when the server's timeline is shorter).
      const from = ok.streamFromSeq > 0n ? ok.streamFromSeq - 1n : 0n;
      if (this.#lastSeq !== from) {
        this.#lastSeq = from;
        this.#save(from);
      }
      this.#maxPushed = from;
      this.#ackedSeq = from;
      this.#unacked = 0;
      this.#backoff.reset();
      if (this.#background) this.#resendDeviceState();
      this.#setState("online");
      this.emit("login", ok, this.#reportError);
      for (const w of [...this.#onlineWaiters]) w.resolve();
      this.#onlineWaiters.clear();
      for (const out of this.#outbox.values()) if (out.reqId === undefined) this.#transmit(out);
      return;
    }
    const e =
      f.body?.$case === "error"
        ? ActorimError.fromFrame(f.body.value)
        : new ActorimError(ClientErrorCode.Protocol, `login answered with ${f.body?.$case}`);
    this.#reportError(e);
    if (e.code === "ERR_UNAUTHENTICATED") return; // the server closes with 4001
    if (e.code === "ERR_BAD_REQUEST") {
      this.#shutdown(e); // a bad deviceId or platform: retrying cannot help
      return;
    }
    ws.close(4000, "login failed");
  }

  // After a login: the server takes every connection to be in the
  // foreground; tell it the app is in the background. A refusal goes to the
  // error event.
  #resendDeviceState(): void {
    const id = this.#newId();
    this.#pending.set(id, {
      resolve: (f) => {
        if (f.body?.$case === "error") this.#reportError(ActorimError.fromFrame(f.body.value));
      },
      reject: () => {}, // the connection dropped: the next login sends it again
    });
    this.#write({ id, body: { $case: "deviceState", value: { background: true } } });
  }

  #onClose(code: number, reason: string): void {
    this.#ws = undefined;
    this.#queue = [];
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    const dropped = new ActorimError(ClientErrorCode.Disconnected, `connection closed (${code} ${reason})`);
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.reject(dropped);
    }
    if (this.#closed) return;
    const fatal = FATAL_CLOSE[code];
    if (fatal !== undefined) {
      const e =
        code === 4001
          ? new ActorimError("ERR_UNAUTHENTICATED", `${fatal}${reason ? ": " + reason : ""}`)
          : new ActorimError(ClientErrorCode.Closed, `close ${code}: ${fatal}${reason ? ": " + reason : ""}`);
      if (code !== 1000) this.#reportError(e);
      this.#shutdown(e);
      return;
    }
    this.#setState("offline");
    let delay = this.#backoff.next();
    if (code === 4009) delay = Math.min(delay, 250); // draining: reconnect at once, to another node
    if (code === 4007) delay = Math.max(delay, 5000); // sent too fast: pause
    this.#scheduleReconnect(delay);
  }

  #scheduleReconnect(delay: number): void {
    if (this.#closed) return;
    this.#setState("offline");
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#open();
    }, delay);
  }

  #shutdown(e: ActorimError): void {
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    const ws = this.#ws;
    this.#ws = undefined;
    this.#queue = [];
    if (ws) {
      try {
        ws.close(1000, "client closed");
      } catch {
        /* already closing */
      }
    }
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.reject(e);
    }
    for (const w of this.#onlineWaiters) w.reject(e);
    this.#onlineWaiters.clear();
    for (const out of this.#outbox.values()) {
      clearTimeout(out.retryTimer);
      out.reject(e);
    }
    this.#outbox.clear();
    this.#setState("closed");
  }

  // --- the push stream ------------------------------------------------------

  #isOwnSend(m: Message | undefined): boolean {
    return (
      m !== undefined &&
      m.from === this.userId &&
      m.fromDevice === this.#o.deviceId &&
      m.content?.kind?.$case !== "event"
    );
  }

  // Delivers queued entries one at a time, in order; an entry at or below the
  // last processed seq is a re-push and is dropped. The seq is saved and
  // acknowledged only after the listeners returned.
  async #pump(): Promise<void> {
    if (this.#processing) return;
    this.#processing = true;
    try {
      for (let item = this.#queue.shift(); item; item = this.#queue.shift()) {
        if (item.ws !== this.#ws) continue; // from a connection that ended: it will be pushed again
        const { entry } = item;
        if (this.#lastSeq !== undefined && entry.seq <= this.#lastSeq) continue;
        const m = entry.item?.$case === "message" ? entry.item.value : undefined;
        // Own sends come back only on a later connection; the app has their SendAck.
        if (m && !this.#isOwnSend(m)) {
          try {
            await this.emitAsync(m.content?.kind?.$case === "event" ? "event" : "message", entry);
          } catch (e) {
            this.#reportError(e); // a failing listener does not stop the stream
          }
        }
        if (this.#lastSeq !== undefined && entry.seq <= this.#lastSeq) continue; // a re-login moved it meanwhile
        this.#lastSeq = entry.seq;
        await this.#save(entry.seq);
        this.#unacked++;
        if (this.#unacked >= this.#ackEvery) this.#flushAck();
        else this.#ackTimer ??= setTimeout(() => this.#flushAck(), this.#ackInterval);
      }
    } finally {
      this.#processing = false;
    }
    // The stream went idle: acknowledge now unless an ack went out very recently.
    if (Date.now() - this.#lastAckAt >= this.#ackInterval) this.#flushAck();
  }

  async #save(seq: bigint): Promise<void> {
    try {
      await this.#store.save(seq);
    } catch (e) {
      this.#reportError(e);
    }
  }

  #flushAck(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    if (this.#state !== "online" || this.#lastSeq === undefined) return;
    // Never ack beyond what this connection pushed (the server refuses that).
    const seq = this.#lastSeq < this.#maxPushed ? this.#lastSeq : this.#maxPushed;
    if (seq <= this.#ackedSeq) return;
    this.#ackedSeq = seq;
    this.#unacked = 0;
    this.#lastAckAt = Date.now();
    this.#write({ id: 0, body: { $case: "pushAck", value: { seq } } });
  }
}
