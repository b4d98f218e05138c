// The web app (web/dist, as built and committed) in headless Chromium
// against a real imnode: each user is a browser context of its own (its own
// localStorage), the app is served from an origin other than the node's and
// finds the node through ?node=, which the node lists in --cors-origins.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { artifacts, startNode, serveDir, servePage, launchBrowser, withContexts } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const run = Date.now().toString(36).slice(-5);
let browser, app, node, userN = 0;
const uid = (p) => `${p}${++userN}-${run}`;

// The node serves the app with this policy (gateway/webapp.go); here the
// node is on another origin, so its origin joins connect-src.
const headers = {};
const csp = (nodeOrigin) =>
  `default-src 'self'; script-src 'self'; connect-src 'self' ws: wss: ${nodeOrigin}; img-src 'self' data: blob:; ` +
  "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'";
const violations = [];

before(async () => {
  app = await serveDir(join(here, "..", "dist"), headers);
  node = await startNode(["--cors-origins", app.origin]);
  headers["Content-Security-Policy"] = csp(node.http);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await node?.stop();
  await app?.close();
});

const appUrl = (hash = "") => `${app.origin}/?node=${encodeURIComponent(node.http)}${hash}`;
const pconv = (a, b) => (a < b ? `p:${a}:${b}` : `p:${b}:${a}`);
const T = { timeout: 10000 };

/** Opens the app in page, registers user through the form and waits until online. */
async function signUp(page, user) {
  watch(page);
  await page.setViewport({ width: 760, height: 520 });
  await page.goto(appUrl());
  await page.type("#login-user", user);
  await page.type("#login-password", "password-" + user);
  await page.click("#register");
  await online(page);
}

/** Collects the page's Content-Security-Policy violations (the last test asserts there were none). */
function watch(page) {
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
}

const online = (page) => page.waitForSelector('#conn[data-state="online"]', T);

/** Two fresh users, alice and bob, each signed up in a browser context of their own. */
async function twoUsers(open) {
  const alice = uid("alice"), bob = uid("bob");
  const [pa, pb] = [await open(), await open()];
  await signUp(pa, alice);
  await signUp(pb, bob);
  return { alice, bob, pa, pb };
}

/** Opens the private chat with user through the "Chat with user id" form. */
async function chatWith(page, user) {
  await page.type("#new-chat-user", user);
  await page.click("#new-chat");
  await page.waitForSelector("#composer", T);
}

async function send(page, text) {
  await page.type("#composer", text);
  await page.keyboard.press("Enter");
}

/** The texts of the messages in the open conversation, in order. */
const texts = (page) => page.$$eval(".chat .msg .text", (els) => els.map((e) => e.textContent));

/** Waits until the open conversation shows exactly these message texts (none pending or failed). */
async function waitTexts(page, want, timeout = 10000) {
  try {
    await page.waitForFunction(
      (want) => {
        const els = [...document.querySelectorAll(".chat .msg")];
        return (
          JSON.stringify(els.map((e) => e.querySelector(".text").textContent)) === JSON.stringify(want) &&
          !document.querySelector(".chat .msg.pending, .chat .msg.failed")
        );
      },
      { timeout },
      want,
    );
  } catch (e) {
    assert.deepEqual(await texts(page), want, "messages shown");
    throw e;
  }
}

const badge = (page, conv) => page.$eval(`.conv[data-conv="${conv}"]`, (li) => li.querySelector(".badge")?.textContent ?? "");

async function waitBadge(page, conv, want) {
  await page.waitForFunction(
    (conv, want) => {
      const li = document.querySelector(`.conv[data-conv="${conv}"]`);
      return li && (li.querySelector(".badge")?.textContent ?? "") === want;
    },
    T,
    conv,
    want,
  );
}

test("two users chat: both directions, unread badge then cleared, read mark, typing, recall", async () => {
  await withContexts(browser, "app-two-users", async (open) => {
    const { alice, bob, pa, pb } = await twoUsers(open);
    const conv = pconv(alice, bob);

    await chatWith(pa, bob);
    await send(pa, "Hi Bob 👋");
    await waitTexts(pa, ["Hi Bob 👋"]);

    // Bob sees the conversation with an unread badge and the preview.
    await waitBadge(pb, conv, "1");
    assert.equal(await pb.$eval(`.conv[data-conv="${conv}"] .preview`, (e) => e.textContent), "Hi Bob 👋");
    await pb.click(`.conv[data-conv="${conv}"]`);
    await waitTexts(pb, ["Hi Bob 👋"]);
    await waitBadge(pb, conv, ""); // read when viewed
    // ...and Alice's message shows it was read.
    await pa.waitForSelector(".chat .msg.mine .read", T);

    // Typing reaches Alice; then Bob's answer does, live.
    await pb.type("#composer", "Hello");
    await pa.waitForFunction((bob) => document.querySelector("#typing").textContent.includes(bob), T, bob);
    await pb.type("#composer", " Alice!");
    await pb.keyboard.press("Enter");
    await waitTexts(pa, ["Hi Bob 👋", "Hello Alice!"]);
    await waitTexts(pb, ["Hi Bob 👋", "Hello Alice!"]);
    await pa.waitForFunction(() => document.querySelector("#typing").textContent === "", T);

    // Alice recalls her message: both see it withdrawn.
    await pa.click(".chat .msg.mine .recall");
    await waitTexts(pa, ["message recalled", "Hello Alice!"]);
    await waitTexts(pb, ["message recalled", "Hello Alice!"]);
  });
});

test("a reload resumes without loss: messages sent meanwhile appear once, in order", async () => {
  await withContexts(browser, "app-reload", async (open) => {
    const { alice, bob, pa, pb } = await twoUsers(open);
    await chatWith(pa, bob);
    await chatWith(pb, alice);
    await send(pa, "m0");
    await waitTexts(pb, ["m0"]);

    const want = ["m0"];
    const reloading = pb.reload();
    for (let i = 1; i <= 6; i++) {
      await send(pa, `m${i}`);
      want.push(`m${i}`);
    }
    await reloading;
    await online(pb);
    for (let i = 7; i <= 9; i++) {
      await send(pa, `m${i}`);
      want.push(`m${i}`);
    }
    await waitTexts(pa, want);
    await waitTexts(pb, want); // the same conversation is open again after the reload
    // And once more from scratch: a second reload shows the same, from history.
    await pb.reload();
    await online(pb);
    await waitTexts(pb, want);
  });
});

test("a user whose page was closed catches up when they come back", async () => {
  await withContexts(browser, "app-offline", async (open, pages) => {
    const { alice, bob, pa, pb } = await twoUsers(open);
    await chatWith(pa, bob);
    await send(pa, "before");
    await waitBadge(pb, pconv(alice, bob), "1");

    const ctx = pb.browserContext();
    await pb.close(); // Bob is offline: the context keeps his localStorage
    for (const t of ["while", "you", "were", "away"]) await send(pa, t);
    await waitTexts(pa, ["before", "while", "you", "were", "away"]);

    const pb2 = await ctx.newPage();
    pages.push(pb2);
    watch(pb2);
    await pb2.setViewport({ width: 760, height: 520 });
    await pb2.goto(appUrl()); // signed in still: no login form
    await online(pb2);
    const conv = pconv(alice, bob);
    await waitBadge(pb2, conv, "5");
    assert.equal(await pb2.$eval(`.conv[data-conv="${conv}"] .preview`, (e) => e.textContent), "away");
    await pb2.click(`.conv[data-conv="${conv}"]`);
    await waitTexts(pb2, ["before", "while", "you", "were", "away"]);
    await waitBadge(pb2, conv, "");
  });
});

test("a group conversation: created with two members, each sees the others' messages", async () => {
  await withContexts(browser, "app-group", async (open) => {
    const alice = uid("alice"), bob = uid("bob"), carol = uid("carol");
    const [pa, pb, pc] = [await open(), await open(), await open()];
    await signUp(pa, alice);
    await signUp(pb, bob);
    await signUp(pc, carol);
    const gid = "team-" + run, conv = "g:" + gid;

    await pa.click("#new-group");
    await pa.type("#group-id", gid);
    await pa.type("#group-name", "The team");
    await pa.type("#group-members", `${bob}, ${carol}`);
    await pa.click("#create-group");
    await pa.waitForSelector(`.chat[data-conv="${conv}"]`, T);
    await pa.waitForFunction((n) => document.querySelectorAll("#members .member-list li").length === n, T, 3);

    await send(pa, "hello team");
    for (const p of [pb, pc]) {
      await p.waitForSelector(`.conv[data-conv="${conv}"]`, T);
      assert.match(await p.$eval(`.conv[data-conv="${conv}"] .conv-title`, (e) => e.textContent), /The team/);
      await p.click(`.conv[data-conv="${conv}"]`);
      await waitTexts(p, ["hello team"]);
    }
    await send(pb, "hi from bob");
    await waitTexts(pb, ["hello team", "hi from bob"]);
    await send(pc, "hi from carol");
    for (const p of [pa, pb, pc]) await waitTexts(p, ["hello team", "hi from bob", "hi from carol"]);
    // The sender's name shows on others' messages in a group.
    assert.deepEqual(await pa.$$eval(".chat .msg.theirs .from", (els) => els.map((e) => e.textContent)), [bob, carol]);
  });
});

test("scrolling up pages older history", async () => {
  await withContexts(browser, "app-paging", async (open) => {
    const { alice, bob, pa, pb } = await twoUsers(open);
    await chatWith(pa, bob);
    const want = [];
    for (let i = 1; i <= 45; i++) {
      await send(pa, `p${i}`);
      want.push(`p${i}`);
    }
    await waitTexts(pa, want);
    await pb.goto(appUrl("#/c/" + encodeURIComponent(pconv(alice, bob))));
    await online(pb);
    await pb.waitForFunction(() => document.querySelectorAll(".chat .msg").length >= 30, T);
    const first = (await texts(pb)).length;
    assert.ok(first < 45, `the first page holds ${first} of 45`);
    assert.deepEqual(await texts(pb), want.slice(45 - first)); // the newest, in order
    await pb.$eval(".messages", (el) => (el.scrollTop = 0));
    await waitTexts(pb, want);
    await pb.waitForFunction(() => document.querySelector(".history-edge").textContent === "start of the conversation", T);
  });
});

test("friends: request, accept, presence, block", async () => {
  await withContexts(browser, "app-friends", async (open) => {
    const { alice, bob, pa, pb } = await twoUsers(open);
    await pa.click("#tab-friends");
    await pa.type("#friend-user", bob);
    await pa.click("#add-friend");
    await pb.waitForFunction(() => document.querySelector("#tab-friends .badge")?.textContent === "1", T);
    await pb.click("#tab-friends");
    await pb.click(`[data-request="${alice}"] .accept`);
    // Both are friends, shown online; the friend event is in their conversation.
    await pa.waitForSelector(`[data-friend="${bob}"] .dot.on`, T);
    await pb.waitForSelector(`[data-friend="${alice}"] .dot.on`, T);
    await pa.click("#tab-chats");
    await pa.waitForSelector(`.conv[data-conv="${pconv(alice, bob)}"] .dot.on`, T);
    // Bob goes away: Alice sees him offline.
    await pb.close();
    await pa.waitForSelector(`.conv[data-conv="${pconv(alice, bob)}"] .dot:not(.on)`, T);
    // Alice blocks Bob: her messages to him are refused.
    await pa.click("#tab-friends");
    await pa.click(`[data-friend="${bob}"] button`);
    await pa.waitForSelector(`[data-blocked="${bob}"]`, T);
    await pa.click(`[data-friend="${bob}"] a`); // the friend's name opens the chat
    await pa.waitForSelector(`.chat[data-conv="${pconv(alice, bob)}"] #composer`, T);
    await send(pa, "are you there?");
    await pa.waitForSelector(".chat .msg.failed", T);
    await pa.waitForFunction(() => document.querySelector("#toast").textContent.includes("ERR_BLOCKED"), T);
  });
});

test("nicknames: alice sets hers, bob's conversation list shows it", async () => {
  await withContexts(browser, "app-nicknames", async (open) => {
    const { alice, bob, pa, pb } = await twoUsers(open);
    await pa.click("#edit-nick");
    await pa.type("#nick-input", "Alice Liddell");
    await pa.click("#nick-save");
    await pa.waitForFunction(() => document.querySelector("#me-name").textContent.startsWith("Alice Liddell"), T);
    await chatWith(pa, bob);
    await send(pa, "hi, it is me");
    const title = `.conv[data-conv="${pconv(alice, bob)}"] .conv-title`;
    await pb.waitForFunction((sel) => document.querySelector(sel)?.textContent === "Alice Liddell", T, title);
    // A nickname with a control character is refused with its code.
    await pa.click("#edit-nick");
    await pa.$eval("#nick-input", (e) => (e.value = "bad\u0007name"));
    await pa.click("#nick-save");
    await pa.waitForFunction(() => document.querySelector("#toast").textContent.includes("ERR_BAD_REQUEST"), T);
  });
});

test("groups: invite from the members panel, leave", async () => {
  await withContexts(browser, "app-group-invite", async (open) => {
    const alice = uid("alice"), bob = uid("bob"), carol = uid("carol");
    const [pa, pb, pc] = [await open(), await open(), await open()];
    for (const [p, u] of [[pa, alice], [pb, bob], [pc, carol]]) await signUp(p, u);
    const gid = "club-" + run, conv = "g:" + gid;
    await pa.click("#new-group");
    await pa.type("#group-id", gid);
    await pa.type("#group-members", bob);
    await pa.click("#create-group");
    await pa.waitForFunction((n) => document.querySelectorAll("#members .member-list li").length === n, T, 2);
    await pa.type("#invite-users", carol);
    await pa.click("#invite");
    await pa.waitForFunction((n) => document.querySelectorAll("#members .member-list li").length === n, T, 3);
    await send(pa, "welcome carol");
    await pc.waitForSelector(`.conv[data-conv="${conv}"]`, T);
    await pc.click(`.conv[data-conv="${conv}"]`);
    await waitTexts(pc, ["welcome carol"]);
    pc.on("dialog", (d) => d.accept());
    await pc.waitForSelector("#leave", T);
    await pc.click("#leave");
    await pa.waitForFunction((n) => document.querySelectorAll("#members .member-list li").length === n, T, 2);
    await pa.waitForFunction((c) => [...document.querySelectorAll(".chat .event")].some((e) => e.textContent === `${c} left`), T, carol);
    // Carol keeps what she received, and gets nothing after.
    await pb.click(`.conv[data-conv="${conv}"]`);
    await pb.waitForSelector("#composer", T);
    await send(pa, "after carol");
    await send(pb, "bye carol");
    await waitTexts(pa, ["welcome carol", "after carol", "bye carol"]);
    await pc.reload();
    await online(pc);
    await waitTexts(pc, ["welcome carol"]);
  });
});

test("the connection state follows the node: reconnecting while it is down, online again, nothing lost", async () => {
  await withContexts(browser, "app-reconnect", async (open) => {
    const { alice, bob, pa, pb } = await twoUsers(open);
    await chatWith(pa, bob);
    await chatWith(pb, alice);
    await send(pa, "before the restart");
    await waitTexts(pb, ["before the restart"]);
    await node.kill();
    try {
      for (const p of [pa, pb]) await p.waitForSelector('#conn[data-state="reconnecting"]', T);
      await send(pa, "sent while the node was down"); // pending until the node is back
      await pa.waitForSelector(".chat .msg.pending", T);
    } finally {
      await node.start();
    }
    for (const p of [pa, pb]) await online(p);
    await send(pb, "after the restart");
    const want = ["before the restart", "sent while the node was down", "after the restart"];
    await waitTexts(pa, want, 20000);
    await waitTexts(pb, want, 20000);
  });
});

test("log out, then log in again with the password: the conversations are still there", async () => {
  await withContexts(browser, "app-logout", async (open) => {
    const alice = uid("alice");
    const pa = await open();
    await signUp(pa, alice);
    await chatWith(pa, alice); // a note to oneself
    await send(pa, "note before logging out");
    await waitTexts(pa, ["note before logging out"]);
    await pa.click("#logout");
    await pa.waitForSelector("#login-user", T);
    await pa.reload(); // the session is gone from localStorage too
    await pa.waitForSelector("#login-user", T);
    await pa.type("#login-user", alice);
    await pa.type("#login-password", "wrong password");
    await pa.click("#login");
    await pa.waitForFunction(() => document.querySelector("#login-status").textContent.startsWith("ERR_"), T);
    await pa.$eval("#login-password", (e) => (e.value = ""));
    await pa.type("#login-password", "password-" + alice);
    await pa.click("#login");
    await online(pa);
    await pa.waitForSelector(`.conv[data-conv="${pconv(alice, alice)}"]`, T);
  });
});

test("an attached image: alice uploads a PNG, bob sees its thumbnail", async () => {
  const file = join(here, "fixtures", "gradient-120x80.png");
  await withContexts(browser, "app-image", async (open) => {
    const { alice, bob, pa, pb } = await twoUsers(open);
    const conv = pconv(alice, bob);
    await chatWith(pa, bob);
    const input = await pa.$("#attach-input");
    assert.equal(await input.evaluate((e) => e.accept), "image/*");
    await input.uploadFile(file);
    // Alice's own message shows the thumbnail once sent.
    await pa.waitForFunction(() => {
      const img = document.querySelector(".chat .msg.mine img.thumb");
      return img && img.complete && img.naturalWidth > 0 && !document.querySelector(".chat .msg.pending");
    }, T);

    // Bob: the conversation's preview says image; in the chat, the thumbnail loads.
    await waitBadge(pb, conv, "1");
    assert.equal(await pb.$eval(`.conv[data-conv="${conv}"] .preview`, (e) => e.textContent), "[image]");
    await pb.click(`.conv[data-conv="${conv}"]`);
    await pb.waitForFunction(() => {
      const img = document.querySelector(".chat .msg.theirs img.thumb");
      return img && img.complete && img.naturalWidth > 0;
    }, T);
    const img = await pb.$eval(".chat .msg.theirs img.thumb", (e) => ({ src: e.src, w: e.naturalWidth, h: e.naturalHeight, alt: e.alt }));
    assert.match(img.src, /^blob:/);
    assert.equal(img.alt, "gradient-120x80.png");
    assert.equal(img.w, 120); // within 320x320: the thumbnail keeps the size
    assert.equal(img.h, 80);
  });
});

/**
 * The background flag of a DeviceState frame the page sent (CDP's
 * Network.webSocketFrameSent response), or undefined for any other frame.
 * The app speaks the proto codec: Frame.device_state is field 36, and
 * DeviceState.background field 1.
 */
function deviceStateOf({ opcode, payloadData }) {
  if (opcode !== 2) return undefined;
  const b = Buffer.from(payloadData, "base64");
  let i = 0;
  const varint = () => {
    let v = 0, shift = 0, x;
    do {
      x = b[i++];
      v += (x & 0x7f) * 2 ** shift;
      shift += 7;
    } while (x & 0x80);
    return v;
  };
  while (i < b.length) {
    const tag = varint(), field = Math.floor(tag / 8), wire = tag & 7;
    if (wire === 0) varint();
    else if (wire === 2) {
      const n = varint(), body = b.subarray(i, i + n);
      i += n;
      if (field === 36) return body.length === 2 && body[0] === 0x08 && body[1] === 0x01;
    } else return undefined;
  }
  return undefined;
}

test("the page reports its visibility (DeviceState), and a hidden page again after a reconnect", async () => {
  await withContexts(browser, "app-visibility", async (open) => {
    const page = await open();
    const cdp = await page.createCDPSession();
    await cdp.send("Network.enable");
    const sent = []; // DeviceState.background of each DeviceState frame, in order
    cdp.on("Network.webSocketFrameSent", ({ response }) => {
      const s = deviceStateOf(response);
      if (s !== undefined) sent.push(s);
    });
    await signUp(page, uid("vis"));
    const setHidden = (hidden) =>
      page.evaluate((hidden) => {
        Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
        document.dispatchEvent(new Event("visibilitychange"));
      }, hidden);
    const waitSent = async (want) => {
      const deadline = Date.now() + 10000;
      while (JSON.stringify(sent) !== JSON.stringify(want) && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 20));
      assert.deepEqual(sent, want, "DeviceState frames sent");
    };
    assert.deepEqual(sent, [], "a visible page sends no DeviceState at login");
    await setHidden(true);
    await waitSent([true]);
    await setHidden(false);
    await waitSent([true, false]);
    await setHidden(true);
    await waitSent([true, false, true]);
    // A reconnect (the connection button) while hidden: the new login is followed by DeviceState again.
    await page.click("#conn");
    await waitSent([true, false, true, true]);
    await online(page);
  });
});

test("the app keeps to the node's Content-Security-Policy", () => {
  assert.deepEqual(violations, []);
});

// The screenshot goes to test-artifacts/web-chat.png; with
// UPDATE_SCREENSHOT=1 to docs/img/web-chat.png (committed, in the README).
test("screenshot: two users chatting side by side", async () => {
  await withContexts(browser, "app-screenshot", async (open) => {
    const alice = "alice", bob = "bob";
    const [pa, pb] = [await open(), await open()];
    if (process.env.DEBUG_CONSOLE) for (const p of [pa, pb]) p.on("console", (m) => console.log("page:", m.text()));
    await signUp(pa, alice);
    await signUp(pb, bob);
    await chatWith(pa, bob);
    await chatWith(pb, alice);
    const lines = [
      [pa, "Hi Bob! Did the node come back after the restart?"],
      [pb, "It did: my page reconnected by itself and nothing was lost 🎉"],
      [pa, "Same here. Lunch at 12:30?"],
      [pb, "Sure, see you there."],
    ];
    const want = [];
    for (const [p, t] of lines) {
      await send(p, t);
      want.push(t);
      await waitTexts(pa, want);
      await waitTexts(pb, want);
    }
    await pa.type("#composer", "Great");
    await pb.waitForFunction(() => document.querySelector("#typing").textContent !== "", T);
    await pa.waitForSelector(".chat .msg.mine .read", T);
    for (const p of [pa, pb]) {
      await p.waitForFunction((t) => document.querySelector(".conv .preview")?.textContent === t, T, lines.at(-1)[1]);
    }
    const shots = [await pa.screenshot({ encoding: "base64" }), await pb.screenshot({ encoding: "base64" })];
    const side = await servePage(`<!doctype html><html><body style="margin:0;display:flex;gap:8px;background:#9aa3b2">
      ${shots.map((s) => `<img src="data:image/png;base64,${s}" width="760" height="520">`).join("")}</body></html>`);
    try {
      const p = await open();
      await p.setViewport({ width: 760 * 2 + 8, height: 520 });
      await p.goto(side.origin);
      const out = process.env.UPDATE_SCREENSHOT ? join(here, "..", "..", "docs", "img") : artifacts;
      mkdirSync(out, { recursive: true });
      await p.screenshot({ path: join(out, "web-chat.png") });
    } finally {
      await side.close();
    }
  });
});
