// The app's shell: sign-in, the sidebar (connection state, conversations,
// friends) and the open conversation. Everything it knows comes from the
// SDK's Client: pushed entries, signals and requests.
import {
  ActorimError,
  Client,
  ConversationType,
  EventType,
  LocalStorageSeqStore,
  GroupRole,
  conversationTarget,
  login,
  privateConversationId,
  register,
  type Conversation,
  type Entry,
  type FriendList,
  type GroupInfo,
  type GroupMembers,
  type Profile,
} from "@actorim/sdk";
import { ChatView } from "./chat";
import { field, h, reconcile, render, update, type Child } from "./dom";
import { messageText, timeOf } from "./format";
import { appId, deviceId, loadSession, nodeUrl, saveSession, seqKey, wsUrl, type Session } from "./session";

const errorText = (e: unknown) => (e instanceof ActorimError ? `${e.code}: ${e.message}` : String(e));
const splitUsers = (s: string) => s.split(/[\s,]+/).filter(Boolean);

export class App {
  #toastTimer?: ReturnType<typeof setTimeout>;
  #toastEl = h("div", { class: "toast", id: "toast", role: "status" });

  constructor(private readonly root: HTMLElement) {}

  start(): void {
    const s = loadSession();
    if (s) new SignedIn(this, s);
    else this.showLogin();
  }

  toast(msg: string): void {
    this.#toastEl.textContent = msg;
    this.#toastEl.classList.add("shown");
    clearTimeout(this.#toastTimer);
    this.#toastTimer = setTimeout(() => this.#toastEl.classList.remove("shown"), 5000);
  }

  mount(...children: Child[]): void {
    render(this.root, ...children, this.#toastEl);
  }

  showLogin(message = ""): void {
    const status = h("p", { class: "login-status", id: "login-status" }, message);
    const form = h(
      "form",
      {
        class: "login",
        onsubmit: async (ev: SubmitEvent) => {
          ev.preventDefault();
          const user = field(form, "user");
          const password = field(form, "password");
          const registering = (ev.submitter as HTMLButtonElement | null)?.value === "register";
          status.textContent = registering ? "registering…" : "signing in…";
          try {
            if (registering) await register(nodeUrl, user, password, { app: appId });
            const r = await login(nodeUrl, user, password, { app: appId });
            const s: Session = { userId: r.userId, token: r.token, expiresAtMs: r.expiresAtMs };
            saveSession(s);
            new SignedIn(this, s);
          } catch (e) {
            status.textContent = errorText(e);
          }
        },
      },
      h("h1", {}, "actorim"),
      h("label", {}, "User id", h("input", { name: "user", id: "login-user", autocomplete: "username", required: true })),
      h(
        "label",
        {},
        "Password",
        h("input", { name: "password", id: "login-password", type: "password", autocomplete: "current-password", required: true }),
      ),
      h(
        "div",
        { class: "row" },
        h("button", { type: "submit", value: "login", id: "login" }, "Log in"),
        h("button", { type: "submit", value: "register", id: "register", class: "secondary" }, "Register"),
      ),
      status,
      h("p", { class: "hint" }, appId ? `node ${nodeUrl}, app ${appId}` : `node ${nodeUrl}`),
    );
    this.mount(h("div", { class: "login-page" }, form));
  }
}

/** The signed-in app: one Client for the page's life. */
class SignedIn {
  readonly client: Client;
  readonly me: string;
  readonly #token: string;
  #convs: Conversation[] = [];
  #groups = new Map<string, GroupInfo>();
  #friends?: FriendList;
  #online = new Map<string, boolean>();
  // Profiles of the private peers of the list, and the user's own.
  #profiles = new Map<string, Profile>();
  #meName = h("span", { class: "me-name", id: "me-name" });
  #chat?: ChatView;
  #members?: HTMLElement;
  #membersBody?: HTMLElement;
  #everOnline = false;
  #refreshTimer?: ReturnType<typeof setTimeout>;

  #conn = h("button", { id: "conn", class: "conn", "data-state": "connecting", type: "button", title: "connection" }, "connecting…");
  #convList = h("ul", { class: "convs", id: "convs" });
  #friendsBody = h("div");
  #friendsEl = h("div", { class: "friends", id: "friends" }, this.#friendForm(), this.#friendsBody);
  #friendsTab = h("button", { type: "button", class: "tab", id: "tab-friends" }, "Friends");
  #chatsTab = h("button", { type: "button", class: "tab active", id: "tab-chats" }, "Chats");
  #chatsEl: HTMLElement;
  #main = h("main", { class: "main", id: "main" });

  constructor(
    private readonly app: App,
    session: Session,
  ) {
    this.me = session.userId;
    this.#meName.textContent = this.me;
    this.#token = session.token;
    this.client = new Client({
      url: wsUrl,
      httpUrl: nodeUrl,
      token: session.token,
      deviceId: deviceId(),
      store: new LocalStorageSeqStore(seqKey(session.userId)),
    });
    const c = this.client;
    c.on("state", (s) => this.#showState(s));
    c.on("login", () => {
      this.#profiles.delete(this.me); // read afresh with the peers'
      this.#scheduleRefresh();
      void this.#loadFriends();
    });
    c.on("profile", (p) => this.#setProfiles([p]));
    c.on("message", (e) => this.#onEntry(e));
    c.on("event", (e) => this.#onEntry(e));
    c.on("typing", (t) => this.#chat?.onTyping(t));
    c.on("presence", (p) => {
      this.#online.set(p.user, p.online);
      this.#renderConvs();
      this.#renderFriends();
    });
    c.on("kick", () => app.toast("This device was signed in elsewhere; click the connection state to reconnect."));
    c.on("error", (e) => {
      if (e instanceof ActorimError && e.code === "ERR_UNAUTHENTICATED") this.#signOut("Your session ended: log in again.");
      else console.warn("actorim:", e);
    });
    this.#conn.addEventListener("click", () => {
      if (c.state === "closed") c.connect().catch((e) => app.toast(errorText(e)));
      else c.reconnect();
    });
    window.addEventListener("online", () => c.reconnect());
    // A hidden page counts as offline for the push webhook (the Client sends
    // the state again after each reconnect); a page opened hidden says so at login.
    this.#reportVisibility();
    document.addEventListener("visibilitychange", this.#reportVisibility);
    window.addEventListener("hashchange", () => this.#openFromHash());

    this.#chatsTab.addEventListener("click", () => this.#tab("chats"));
    this.#friendsTab.addEventListener("click", () => this.#tab("friends"));
    this.#chatsEl = h("div", { class: "tab-body" }, this.#forms(), this.#convList);
    this.#friendsEl.hidden = true;
    app.mount(
      h(
        "div",
        { class: "shell" },
        h(
          "aside",
          { class: "side" },
          h(
            "header",
            { class: "side-head" },
            h("strong", { id: "me", title: this.me }, this.#meName),
            this.#nickForm(),
            this.#conn,
            h("button", { type: "button", id: "logout", class: "link", onclick: () => this.#signOut() }, "Log out"),
          ),
          h("nav", { class: "tabs" }, this.#chatsTab, this.#friendsTab),
          this.#chatsEl,
          this.#friendsEl,
        ),
        this.#main,
      ),
    );
    this.#openFromHash();
    c.connect().catch((e) => app.toast(errorText(e)));
  }

  #tab(which: "chats" | "friends"): void {
    this.#chatsEl.hidden = which !== "chats";
    this.#friendsEl.hidden = which !== "friends";
    this.#chatsTab.classList.toggle("active", which === "chats");
    this.#friendsTab.classList.toggle("active", which === "friends");
    if (which === "friends") void this.#loadFriends();
  }

  #showState(s: string): void {
    if (s === "online") this.#everOnline = true;
    const state = s === "online" ? "online" : s === "closed" ? "offline" : this.#everOnline ? "reconnecting" : "connecting";
    this.#conn.dataset.state = state;
    this.#conn.textContent = state === "online" ? "online" : state === "offline" ? "offline" : state + "…";
  }

  #reportVisibility = (): void => {
    this.client.setDeviceState(document.visibilityState === "hidden").catch((e) => console.warn("device state:", e));
  };

  #signOut(message = ""): void {
    document.removeEventListener("visibilitychange", this.#reportVisibility);
    this.#chat?.close();
    this.client.logout();
    saveSession(undefined);
    history.replaceState(null, "", location.pathname + location.search);
    this.app.showLogin(message);
  }

  // --- entries ----------------------------------------------------------------

  #onEntry(e: Entry): void {
    this.#chat?.onEntry(e);
    const m = e.item?.$case === "message" ? e.item.value : undefined;
    const ev = m?.content?.kind?.$case === "event" ? m.content.kind.value : undefined;
    if (ev && ev.type >= EventType.EVENT_FRIEND_REQUEST && ev.type <= EventType.EVENT_FRIEND_DELETED) void this.#loadFriends();
    if (ev?.group) this.#groups.set(ev.group.groupId, ev.group);
    if (ev?.groupId && this.#chat?.conversationId === `g:${ev.groupId}`) void this.#loadMembers(ev.groupId);
    this.#scheduleRefresh();
  }

  // Reloads the conversation list soon, at most every 100 ms however fast
  // entries arrive (answers come in order, so the last one is the newest).
  #scheduleRefresh = (): void => {
    this.#refreshTimer ??= setTimeout(() => {
      this.#refreshTimer = undefined;
      void this.#refreshConvs();
    }, 100);
  };

  async #refreshConvs(): Promise<void> {
    try {
      this.#convs = await this.client.conversations();
    } catch (e) {
      console.warn("conversations:", e);
      return;
    }
    this.#renderConvs();
    await this.#loadProfiles();
    // Names of groups not seen in an event yet.
    for (const c of this.#convs) {
      const gid = c.conversationType === ConversationType.CONVERSATION_TYPE_GROUP ? c.conversationId.slice(2) : "";
      if (gid && !this.#groups.has(gid)) {
        const info = await this.client.groupInfo(gid).catch(() => undefined);
        if (info) this.#groups.set(gid, info), this.#renderConvs();
      }
    }
  }

  #title(convId: string): string {
    const t = conversationTarget(convId, this.me);
    if (t?.conversationType === ConversationType.CONVERSATION_TYPE_GROUP) return this.#groups.get(t.to)?.name || t.to;
    return (t && this.#profiles.get(t.to)?.nickname) || t?.to || convId.replace(/^s:/, "");
  }

  // --- profiles ---------------------------------------------------------------

  // Reads the profiles of the list's private peers not known yet (and the
  // user's own), 100 at a time; a friend's later changes come as "profile"
  // events.
  async #loadProfiles(): Promise<void> {
    const want = new Set<string>();
    if (!this.#profiles.has(this.me)) want.add(this.me);
    for (const c of this.#convs) {
      const t = conversationTarget(c.conversationId, this.me);
      if (t?.conversationType === ConversationType.CONVERSATION_TYPE_PRIVATE && !this.#profiles.has(t.to)) want.add(t.to);
    }
    const ids = [...want];
    for (let i = 0; i < ids.length; i += 100) {
      const batch = ids.slice(i, i + 100);
      try {
        const got = await this.client.getProfiles(batch);
        // A user left out (unknown, or blocking us) is shown by id: remember that.
        for (const u of batch) if (!got.some((p) => p.userId === u)) this.#profiles.set(u, { userId: u, nickname: "", avatarUrl: "", extra: "", updatedAtMs: 0n });
        this.#setProfiles(got);
      } catch (e) {
        console.warn("profiles:", e);
        return;
      }
    }
  }

  #setProfiles(ps: Profile[]): void {
    for (const p of ps) this.#profiles.set(p.userId, p);
    const mine = this.#profiles.get(this.me)?.nickname;
    this.#meName.textContent = mine ? `${mine} (${this.me})` : this.me;
    this.#renderConvs();
  }

  // The user's own nickname: a button that opens an inline form.
  #nickForm(): HTMLElement {
    const input = h("input", { name: "nickname", id: "nick-input", placeholder: "Your nickname", autocomplete: "off", maxlength: 64 });
    const form = h(
      "form",
      {
        class: "inline nick-form",
        id: "nick-form",
        hidden: true,
        onsubmit: async (ev: SubmitEvent) => {
          ev.preventDefault();
          try {
            const p = await this.client.setProfile({ nickname: input.value });
            if (p) this.#setProfiles([p]);
            form.hidden = true;
          } catch (e) {
            this.app.toast(errorText(e));
          }
        },
      },
      input,
      h("button", { type: "submit", id: "nick-save" }, "Save"),
    );
    const edit = h(
      "button",
      {
        type: "button",
        id: "edit-nick",
        class: "link",
        title: "Change your nickname",
        onclick: () => {
          form.hidden = !form.hidden;
          input.value = this.#profiles.get(this.me)?.nickname ?? "";
          if (!form.hidden) input.focus();
        },
      },
      "Name",
    );
    return h("span", { class: "nick" }, edit, form);
  }

  #dot(convId: string): Child {
    const t = conversationTarget(convId, this.me);
    if (t?.conversationType !== ConversationType.CONVERSATION_TYPE_PRIVATE || !this.#isFriend(t.to)) return null;
    return h("span", { class: `dot ${this.#online.get(t.to) ? "on" : ""}`, title: this.#online.get(t.to) ? "online" : "offline" });
  }

  #isFriend(user: string): boolean {
    return this.#friends?.friends.some((f) => f.user === user) ?? false;
  }

  #renderConvs(): void {
    const open = this.#chat?.conversationId;
    const rows = this.#convs.map((c) =>
      h(
        "li",
        {
          class: `conv ${c.conversationId === open ? "active" : ""}`,
          "data-conv": c.conversationId,
          onclick: () => this.#go(c.conversationId),
        },
        h(
          "div",
          { class: "conv-top" },
          this.#dot(c.conversationId),
          h("span", { class: "conv-title" }, c.conversationType === ConversationType.CONVERSATION_TYPE_GROUP ? "# " : "", this.#title(c.conversationId)),
          c.lastMessage && h("span", { class: "conv-time" }, timeOf(c.lastMessage.sentAtMs)),
        ),
        h(
          "div",
          { class: "conv-bottom" },
          h(
            "span",
            { class: "preview" },
            c.lastMessage && c.conversationType === ConversationType.CONVERSATION_TYPE_GROUP && c.lastMessage.content?.kind?.$case !== "event"
              ? `${c.lastMessage.from === this.me ? "you" : c.lastMessage.from}: `
              : "",
            c.lastMessage ? messageText(c.lastMessage, this.me) : "",
          ),
          c.unread > 0 && h("span", { class: "badge" }, String(c.unread)),
        ),
      ),
    );
    if (rows.length === 0) rows.push(h("li", { class: "empty", "data-conv": "" }, "No conversations yet: start one above."));
    reconcile(this.#convList, rows, "data-conv");
  }

  // --- the open conversation --------------------------------------------------

  #go(convId: string): void {
    location.hash = "#/c/" + encodeURIComponent(convId);
  }

  #openFromHash(): void {
    const m = /^#\/c\/(.+)$/.exec(location.hash);
    const convId = m ? decodeURIComponent(m[1]!) : "";
    if (convId === (this.#chat?.conversationId ?? "")) return;
    this.#chat?.close();
    this.#chat = undefined;
    this.#members = this.#membersBody = undefined;
    if (!convId) {
      render(this.#main, h("div", { class: "placeholder" }, "Pick a conversation, or start one by user id."));
      this.#renderConvs();
      return;
    }
    const conv = this.#convs.find((c) => c.conversationId === convId);
    const target = conversationTarget(convId, this.me);
    const group = target?.conversationType === ConversationType.CONVERSATION_TYPE_GROUP ? target.to : "";
    const title = h("div", { class: "chat-title" }, this.#dot(convId), h("strong", {}, group ? "# " : "", this.#title(convId)));
    this.#chat = new ChatView(
      this.client,
      convId,
      this.me,
      conv?.readMsgId ?? 0n,
      title,
      this.#scheduleRefresh,
      (e) => this.app.toast(errorText(e)),
      { httpUrl: nodeUrl, token: this.#token },
    );
    if (group) {
      this.#members = this.#membersPanel(group);
      void this.#loadMembers(group);
    }
    render(this.#main, this.#chat.el, this.#members);
    void this.#chat.loadOlder();
    this.#chat.focus();
    this.#renderConvs();
  }

  // The members panel of a group: its info and members (reloaded on the
  // group's events), an invite form and the leave button.
  #membersPanel(groupId: string): HTMLElement {
    const invite: HTMLFormElement = h(
      "form",
      {
        class: "inline",
        onsubmit: async (ev: SubmitEvent) => {
          ev.preventDefault();
          const users = splitUsers(field(invite, "users"));
          if (!users.length) return;
          try {
            await this.client.inviteToGroup(groupId, users);
            invite.reset();
          } catch (e) {
            this.app.toast(errorText(e));
          }
        },
      },
      h("input", { name: "users", id: "invite-users", placeholder: "user ids" }),
      h("button", { type: "submit", id: "invite" }, "Invite"),
    );
    this.#membersBody = h("div");
    return h("aside", { class: "members", id: "members" }, this.#membersBody, invite);
  }

  async #loadMembers(groupId: string): Promise<void> {
    const el = this.#membersBody;
    if (!el) return;
    let info: GroupInfo | undefined, members: GroupMembers | undefined;
    try {
      [info, members] = await Promise.all([this.client.groupInfo(groupId), this.client.groupMembers(groupId)]);
    } catch (e) {
      // Not (or no longer) a member: the history stays readable.
      update(el, h("h3", {}, this.#groups.get(groupId)?.name || groupId), h("p", { class: "hint" }, errorText(e)));
      return;
    }
    if (info) this.#groups.set(groupId, info);
    const roles: Record<number, string> = { [GroupRole.GROUP_ROLE_OWNER]: "owner", [GroupRole.GROUP_ROLE_ADMIN]: "admin" };
    const leave = async () => {
      if (!confirm(`Leave ${info?.name || groupId}?`)) return;
      await this.client.leaveGroup(groupId).catch((e) => this.app.toast(errorText(e)));
    };
    update(
      el,
      h("h3", {}, info?.name || groupId),
      info?.dissolved && h("p", { class: "hint" }, "dissolved"),
      h("h4", {}, `Members (${members?.members.length ?? 0})`),
      h(
        "ul",
        { class: "member-list" },
        (members?.members ?? []).map((m) =>
          h("li", { "data-user": m.user }, m.user === this.me ? `${m.user} (you)` : m.user, roles[m.role] && h("span", { class: "role" }, roles[m.role])),
        ),
      ),
      info?.owner !== this.me && h("button", { type: "button", id: "leave", class: "danger", onclick: leave }, "Leave group"),
    );
  }

  // --- new chats and groups ---------------------------------------------------

  #forms(): HTMLElement {
    const chat = h(
      "form",
      {
        class: "inline",
        id: "new-chat-form",
        onsubmit: (ev: SubmitEvent) => {
          ev.preventDefault();
          const user = field(chat, "user");
          if (!user) return;
          chat.reset();
          this.#go(privateConversationId(this.me, user));
        },
      },
      h("input", { name: "user", id: "new-chat-user", placeholder: "Chat with user id", autocomplete: "off" }),
      h("button", { type: "submit", id: "new-chat" }, "Chat"),
    );
    const group = h(
      "form",
      {
        class: "stack",
        id: "new-group-form",
        onsubmit: async (ev: SubmitEvent) => {
          ev.preventDefault();
          const id = field(group, "id");
          try {
            await this.client.createGroup(id, { name: field(group, "name") || id, members: splitUsers(field(group, "members")) });
            group.reset();
            (group.parentElement as HTMLDetailsElement).open = false;
            this.#go(`g:${id}`);
          } catch (e) {
            this.app.toast(errorText(e));
          }
        },
      },
      h("input", { name: "id", id: "group-id", placeholder: "group id (letters, digits, _.@-)", required: true }),
      h("input", { name: "name", id: "group-name", placeholder: "name" }),
      h("input", { name: "members", id: "group-members", placeholder: "members: user ids, comma separated" }),
      h("button", { type: "submit", id: "create-group" }, "Create group"),
    );
    return h("div", { class: "new" }, chat, h("details", {}, h("summary", { id: "new-group" }, "New group"), group));
  }

  // --- friends ------------------------------------------------------------------

  async #loadFriends(): Promise<void> {
    try {
      this.#friends = await this.client.friendList();
      const users = this.#friends?.friends.map((f) => f.user) ?? [];
      if (users.length) for (const p of await this.client.presence(users.slice(0, 200))) this.#online.set(p.user, p.online);
    } catch (e) {
      console.warn("friends:", e);
    }
    this.#renderFriends();
    this.#renderConvs();
  }

  async #act(p: Promise<unknown>): Promise<void> {
    try {
      await p;
    } catch (e) {
      this.app.toast(errorText(e));
    }
    await this.#loadFriends();
  }

  #friendForm(): HTMLElement {
    const add: HTMLFormElement = h(
      "form",
      {
        class: "inline",
        onsubmit: (ev: SubmitEvent) => {
          ev.preventDefault();
          const user = field(add, "user");
          if (user) void this.#act(this.client.friendRequest(user)).then(() => add.reset());
        },
      },
      h("input", { name: "user", id: "friend-user", placeholder: "Add friend by user id", autocomplete: "off" }),
      h("button", { type: "submit", id: "add-friend" }, "Add"),
    );
    return add;
  }

  #renderFriends(): void {
    const f = this.#friends;
    const incoming = f?.incoming.length ?? 0;
    this.#friendsTab.replaceChildren("Friends", incoming ? h("span", { class: "badge" }, String(incoming)) : "");
    const btn = (label: string, cls: string, fn: () => Promise<unknown>) =>
      h("button", { type: "button", class: cls, onclick: () => void this.#act(fn()) }, label);
    update(
      this.#friendsBody,
      !!incoming && h("h4", {}, "Requests"),
      f?.incoming.map((r) =>
        h(
          "div",
          { class: "person", "data-request": r.user },
          h("span", { class: "name" }, r.user, r.note && h("small", {}, ` “${r.note}”`)),
          btn("Accept", "accept", () => this.client.friendAccept(r.user)),
          btn("Decline", "link", () => this.client.friendReject(r.user)),
        ),
      ),
      !!f?.outgoing.length && h("h4", {}, "Waiting for an answer"),
      f?.outgoing.map((r) => h("div", { class: "person muted" }, r.user)),
      h("h4", {}, "Friends"),
      !f?.friends.length && h("p", { class: "hint" }, "No friends yet."),
      f?.friends.map((fr) =>
        h(
          "div",
          { class: "person", "data-friend": fr.user },
          h("span", { class: `dot ${this.#online.get(fr.user) ? "on" : ""}` }),
          h("a", { class: "name", href: "#/c/" + encodeURIComponent(privateConversationId(this.me, fr.user)) }, fr.remark || fr.user),
          btn("Block", "link danger", () => this.client.block(fr.user)),
        ),
      ),
      !!f?.blocked.length && h("h4", {}, "Blocked"),
      f?.blocked.map((u) =>
        h("div", { class: "person muted", "data-blocked": u }, h("span", { class: "name" }, u), btn("Unblock", "link", () => this.client.unblock(u))),
      ),
    );
  }
}
