// One conversation: its history (paged backwards as the user scrolls up),
// live entries, sending with a pending mark until the SendAck, read marks
// sent while it is on screen, typing in both directions and recall; images
// attached (uploaded with progress through @actorim/sdk/media, shown as
// thumbnails in blob: URLs) and other files offered as downloads.
import {
  ActorimError,
  ConversationType,
  EventType,
  conversationTarget,
  type Client,
  type Content,
  type ConversationTarget,
  type Entry,
  type TypingSignal,
} from "@actorim/sdk";
import { downloadFile, mediaContent, mediaOf, signedLink, uploadFile } from "@actorim/sdk/media";
import { h, update, type Child } from "./dom";
import { messageText, timeOf } from "./format";

interface Item {
  key: string;
  seq?: bigint; // the viewer's timeline seq; undefined while a send is pending
  msgId?: bigint;
  from: string;
  sentAtMs: bigint;
  text: string;
  event: boolean;
  recalled: boolean;
  status?: "pending" | "failed";
  /** Upload progress of a pending attachment, percent. */
  progress?: number;
  media?: ItemMedia;
}

interface ItemMedia {
  kind: "image" | "audio" | "video" | "file";
  fileId: string;
  name: string;
  size: bigint;
  caption: string;
  /** The thumbnail's dimensions (images). */
  thumbW: number;
  thumbH: number;
}

/** Where the media API is, and the user's token for it. */
export interface MediaAccess {
  httpUrl: string;
  token: string;
}

const PAGE = 30;
const RECALL_WINDOW_MS = 2 * 60_000; // the node's default --recall-window
const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 6000;

let localKeys = 0;

export class ChatView {
  readonly el: HTMLElement;
  readonly target?: ConversationTarget;
  #items = new Map<string, Item>();
  #list: HTMLElement;
  #typingEl: HTMLElement;
  #input: HTMLInputElement;
  #oldest?: bigint;
  #hasMore = true;
  #loading = false;
  #peerRead = 0n; // the other party's read mark (private chats)
  #marked: bigint; // the highest msgId this view marked read
  #typers = new Map<string, ReturnType<typeof setTimeout>>();
  #lastTypingSent = 0;
  #closed = false;
  #file: HTMLInputElement;
  /** Thumbnails by message id: a blob: URL, or loading/failed. */
  #thumbs = new Map<string, string>();

  constructor(
    private readonly client: Client,
    readonly conversationId: string,
    private readonly me: string,
    readMsgId: bigint,
    title: Child,
    /** Called after this view changed what the conversation list shows (a read mark, a send). */
    private readonly onChange: () => void,
    private readonly onError: (e: unknown) => void,
    private readonly mediaAccess?: MediaAccess,
  ) {
    this.target = conversationTarget(conversationId, me);
    this.#marked = readMsgId;
    this.#list = h("div", { class: "messages", onscroll: () => this.#list.scrollTop < 60 && void this.loadOlder() });
    this.#typingEl = h("div", { class: "typing", id: "typing" });
    this.#file = h("input", {
      type: "file",
      id: "attach-input",
      accept: "image/*",
      hidden: true,
      onchange: () => {
        const f = this.#file.files?.[0];
        this.#file.value = "";
        if (f) void this.sendFile(f);
      },
    });
    this.#input = h("input", {
      id: "composer",
      placeholder: this.target ? "Write a message, Enter to send" : "Nobody can write here",
      autocomplete: "off",
      disabled: !this.target,
      oninput: () => this.#typing(),
    });
    const form = h(
      "form",
      {
        class: "composer",
        onsubmit: (ev: SubmitEvent) => {
          ev.preventDefault();
          const text = this.#input.value.trim();
          if (!text) return;
          this.#input.value = "";
          void this.send(text);
        },
      },
      this.#file,
      h(
        "button",
        {
          type: "button",
          class: "attach",
          id: "attach",
          title: "Attach an image",
          disabled: !this.target || !mediaAccess,
          onclick: () => this.#file.click(),
        },
        "📎",
      ),
      this.#input,
      h("button", { type: "submit", disabled: !this.target }, "Send"),
    );
    this.el = h("section", { class: "chat", "data-conv": conversationId }, h("header", { class: "chat-head" }, title), this.#list, this.#typingEl, form);
    document.addEventListener("visibilitychange", this.#onVisible);
  }

  close(): void {
    this.#closed = true;
    document.removeEventListener("visibilitychange", this.#onVisible);
    for (const t of this.#typers.values()) clearTimeout(t);
    for (const u of this.#thumbs.values()) if (u.startsWith("blob:")) URL.revokeObjectURL(u);
  }

  focus(): void {
    this.#input.focus();
  }

  #onVisible = () => this.#markRead();

  /** Loads the next older page of history (the first call loads the newest page). */
  async loadOlder(): Promise<void> {
    if (this.#loading || !this.#hasMore || this.#closed) return;
    this.#loading = true;
    const first = this.#oldest === undefined;
    this.#renderList("keep");
    try {
      const r = await this.client.history(this.conversationId, { beforeSeq: this.#oldest ?? 0n, limit: PAGE });
      for (const e of r.entries) {
        this.#add(e);
        if (this.#oldest === undefined || e.seq < this.#oldest) this.#oldest = e.seq;
      }
      this.#hasMore = r.hasMore && r.entries.length > 0;
    } catch (e) {
      // A conversation with nothing in it yet (a new chat) has no history to read.
      const code = e instanceof ActorimError ? e.code : "";
      if (code === "ERR_NOT_MEMBER" || code === "ERR_NOT_FOUND" || code === "ERR_FORBIDDEN") this.#hasMore = false;
      else this.onError(e);
    } finally {
      this.#loading = false;
    }
    if (this.#closed) return;
    this.#renderList(first ? "bottom" : "keep");
    this.#markRead();
    // Keep loading until the list can scroll (or the conversation's start).
    if (this.#hasMore && this.#list.scrollHeight <= this.#list.clientHeight + 60) void this.loadOlder();
  }

  /** A live timeline entry (message or event) of any conversation. */
  onEntry(entry: Entry): void {
    const m = entry.item?.$case === "message" ? entry.item.value : undefined;
    if (!m || m.conversationId !== this.conversationId) return;
    this.#add(entry);
    if (!m.content || m.content.kind?.$case !== "event") this.#stopTyper(m.from);
    this.#renderList("auto");
    this.#markRead();
  }

  onTyping(t: TypingSignal): void {
    if (t.conversationId !== this.conversationId || t.from === this.me) return;
    if (!t.typing) return this.#stopTyper(t.from);
    clearTimeout(this.#typers.get(t.from));
    this.#typers.set(t.from, setTimeout(() => this.#stopTyper(t.from), TYPING_SHOWN_MS));
    this.#renderTyping();
  }

  async send(text: string): Promise<void> {
    const local = this.#pending(text);
    if (local) await this.#deliver(local, text);
  }

  /** Uploads a file (with its progress on the pending message), then sends it. */
  async sendFile(file: File): Promise<void> {
    const a = this.mediaAccess;
    const local = this.#pending(`[${file.name}]`);
    if (!a || !local) return;
    local.progress = 0;
    this.#renderList("auto");
    let content: Content;
    try {
      const f = await uploadFile(a.httpUrl, a.token, file, {
        name: file.name,
        onProgress: (sent, total) => {
          local.progress = total > 0 ? Math.floor((sent * 100) / total) : 100;
          if (!this.#closed) this.#renderList("auto");
        },
      });
      content = mediaContent(f);
      const m = mediaOf(content)!;
      local.media = {
        kind: m.kind,
        fileId: f.file_id,
        name: f.name ?? file.name,
        size: BigInt(f.size),
        caption: "",
        thumbW: f.thumbnail?.width ?? 0,
        thumbH: f.thumbnail?.height ?? 0,
      };
    } catch (e) {
      local.status = "failed";
      local.progress = undefined;
      this.onError(e);
      if (!this.#closed) this.#renderList("auto");
      return;
    }
    local.progress = undefined;
    await this.#deliver(local, content);
  }

  #pending(text: string): Item | undefined {
    const t = this.target;
    if (!t) return undefined;
    const local: Item = {
      key: `local-${++localKeys}`,
      from: this.me,
      sentAtMs: BigInt(Date.now()),
      text,
      event: false,
      recalled: false,
      status: "pending",
    };
    this.#items.set(local.key, local);
    this.#renderList("bottom");
    if (this.#lastTypingSent) {
      this.#lastTypingSent = 0;
      this.client.typing(t.to, false, t.conversationType).catch(() => {});
    }
    return local;
  }

  async #deliver(local: Item, content: string | Content): Promise<void> {
    const t = this.target!;
    try {
      const ack = await this.client.send(t.to, content, { conversationType: t.conversationType });
      this.#items.delete(local.key);
      const key = ack.msgId.toString();
      if (!this.#items.has(key)) {
        this.#items.set(key, { ...local, key, seq: ack.seq, msgId: ack.msgId, sentAtMs: ack.sentAtMs, status: undefined });
      }
      this.onChange();
    } catch (e) {
      local.status = "failed";
      this.onError(e);
    }
    if (!this.#closed) this.#renderList("auto");
  }

  async #recall(it: Item): Promise<void> {
    if (it.msgId === undefined) return;
    try {
      await this.client.recall(this.conversationId, it.msgId);
      it.recalled = true;
      it.text = "message recalled";
      this.#renderList("auto");
      this.onChange();
    } catch (e) {
      this.onError(e);
    }
  }

  #add(entry: Entry): void {
    const m = entry.item?.$case === "message" ? entry.item.value : undefined;
    if (!m) return;
    const ev = m.content?.kind?.$case === "event" ? m.content.kind.value : undefined;
    if (ev?.type === EventType.EVENT_RECALLED) {
      const it = this.#items.get(ev.msgId.toString());
      if (it) ((it.recalled = true), (it.text = "message recalled"));
      return;
    }
    if (ev?.type === EventType.EVENT_READ) {
      if (ev.actor !== this.me && ev.msgId > this.#peerRead) this.#peerRead = ev.msgId;
      return;
    }
    if (ev?.type === EventType.EVENT_CONVERSATION_UPDATED) return;
    const key = m.id.toString();
    const md = mediaOf(m.content);
    this.#items.set(key, {
      key,
      seq: entry.seq,
      msgId: m.id,
      from: m.from,
      sentAtMs: m.sentAtMs,
      text: messageText(m, this.me),
      event: ev !== undefined,
      recalled: m.recalled,
      media: md && {
        kind: md.kind,
        fileId: md.media.fileId,
        name: md.media.name,
        size: md.media.size,
        caption: md.media.caption,
        thumbW: md.media.thumbnail?.width ?? 0,
        thumbH: md.media.thumbnail?.height ?? 0,
      },
    });
  }

  // Fetches an image's thumbnail through a signed link into a blob: URL
  // (the app's CSP allows blob: images), then shows it.
  async #loadThumb(it: Item): Promise<void> {
    const a = this.mediaAccess;
    if (!a || !it.media || it.msgId === undefined) return;
    const key = it.msgId.toString();
    this.#thumbs.set(key, "loading");
    try {
      const link = await signedLink(a.httpUrl, a.token, it.media.fileId, it.msgId);
      if (!link.thumbUrl) throw new Error("no thumbnail");
      const r = await fetch(link.thumbUrl, { credentials: "omit" });
      if (!r.ok) throw new Error(`thumbnail: HTTP ${r.status}`);
      const url = URL.createObjectURL(await r.blob());
      if (this.#closed) return URL.revokeObjectURL(url);
      this.#thumbs.set(key, url);
    } catch {
      this.#thumbs.set(key, "failed");
    }
    if (!this.#closed) this.#renderList("auto");
  }

  // Downloads a file with the token and hands it to the browser as a download.
  async #download(it: Item): Promise<void> {
    const a = this.mediaAccess;
    if (!a || !it.media) return;
    try {
      const blob = await downloadFile(a.httpUrl, a.token, it.media.fileId, it.msgId);
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: it.media.name || "file" });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      this.onError(e);
    }
  }

  #mediaBody(it: Item, md: ItemMedia): Child {
    if (md.kind === "image" && md.thumbW > 0 && it.msgId !== undefined) {
      const key = it.msgId.toString();
      const src = this.#thumbs.get(key);
      if (src === undefined) void this.#loadThumb(it);
      const size = { width: md.thumbW, height: md.thumbH };
      return src?.startsWith("blob:")
        ? h("img", { class: "thumb", src, alt: md.name, ...size, title: "download", onclick: () => void this.#download(it) })
        : h("div", { class: "thumb placeholder", style: `aspect-ratio: ${md.thumbW} / ${md.thumbH}` }, src === "failed" ? "image unavailable" : "loading image…");
    }
    return h(
      "a",
      { class: "file-link", href: "#", onclick: (ev: Event) => (ev.preventDefault(), void this.#download(it)) },
      `⬇ ${md.name || md.kind} (${sizeText(md.size)})`,
    );
  }

  // Marks the conversation read up to its newest message from others while
  // the page is visible.
  #markRead(): void {
    if (this.#closed || document.visibilityState !== "visible") return;
    let newest = 0n;
    for (const it of this.#items.values()) {
      if (!it.event && it.from !== this.me && it.msgId !== undefined && it.msgId > newest) newest = it.msgId;
    }
    if (newest <= this.#marked) return;
    this.#marked = newest;
    this.client.markRead(this.conversationId, newest).then(this.onChange, this.onError);
  }

  #typing(): void {
    const t = this.target;
    if (!t || Date.now() - this.#lastTypingSent < TYPING_EVERY_MS) return;
    this.#lastTypingSent = Date.now();
    this.client.typing(t.to, true, t.conversationType).catch(() => {});
  }

  #stopTyper(user: string): void {
    if (!this.#typers.has(user)) return;
    clearTimeout(this.#typers.get(user));
    this.#typers.delete(user);
    this.#renderTyping();
  }

  #renderTyping(): void {
    const who = [...this.#typers.keys()];
    this.#typingEl.textContent = who.length ? `${who.join(", ")} ${who.length > 1 ? "are" : "is"} typing…` : "";
  }

  // mode: "bottom" scrolls to the newest, "keep" keeps what is on screen
  // (older entries were added above), "auto" follows the newest when the
  // list was scrolled to the bottom.
  #renderList(mode: "bottom" | "keep" | "auto"): void {
    const l = this.#list;
    const atBottom = l.scrollHeight - l.scrollTop - l.clientHeight < 40;
    const fromBottom = l.scrollHeight - l.scrollTop;
    const items = [...this.#items.values()].sort((a, b) =>
      a.seq === undefined ? (b.seq === undefined ? 0 : 1) : b.seq === undefined ? -1 : a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0,
    );
    const group = this.target?.conversationType === ConversationType.CONVERSATION_TYPE_GROUP;
    update(
      l,
      h("div", { class: "history-edge" }, this.#loading ? "loading…" : this.#hasMore ? "" : "start of the conversation"),
      items.map((it) => (it.event ? h("div", { class: "event", "data-key": it.key }, it.text) : this.#message(it, group))),
    );
    if (mode === "keep") l.scrollTop = l.scrollHeight - fromBottom;
    else if (mode === "bottom" || atBottom) l.scrollTop = l.scrollHeight;
  }

  #message(it: Item, group: boolean): HTMLElement {
    const mine = it.from === this.me;
    const canRecall =
      mine && !it.recalled && it.msgId !== undefined && Date.now() - Number(it.sentAtMs) < RECALL_WINDOW_MS;
    const cls = ["msg", mine ? "mine" : "theirs", it.status ?? "", it.recalled ? "recalled" : ""].join(" ").trim();
    return h(
      "div",
      { class: cls, "data-key": it.key, "data-from": it.from },
      group && !mine && h("div", { class: "from" }, it.from),
      h(
        "div",
        { class: "bubble" },
        it.media && !it.recalled
          ? [this.#mediaBody(it, it.media), it.media.caption && h("div", { class: "text caption" }, it.media.caption)]
          : h("span", { class: "text" }, it.text),
      ),
      h(
        "div",
        { class: "meta" },
        timeOf(it.sentAtMs),
        it.status === "pending" &&
          h("span", { class: "status" }, it.progress !== undefined ? ` · uploading ${it.progress}%` : " · sending…"),
        it.status === "failed" && h("span", { class: "status" }, " · not sent"),
        mine && !group && it.msgId !== undefined && it.msgId <= this.#peerRead && h("span", { class: "status read" }, " · read"),
        canRecall && h("button", { class: "recall link", type: "button", onclick: () => void this.#recall(it) }, "recall"),
      ),
    );
  }
}

function sizeText(n: bigint): string {
  const v = Number(n);
  return v < 1024 ? `${v} B` : v < 1 << 20 ? `${(v / 1024).toFixed(1)} KiB` : `${(v / (1 << 20)).toFixed(1)} MiB`;
}
