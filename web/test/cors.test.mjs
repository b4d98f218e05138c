// A page on another origin uses the HTTP API through CORS, in a real
// browser: it registers and logs in two users, they chat over WebSocket,
// and it reads the conversation's history over HTTP with the token. A page
// of an origin the node does not list is refused by the browser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startNode, servePage, launchBrowser, withPage } from "./harness.mjs";

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>cross-origin</title></head>
<body><h1>a page on another origin</h1></body></html>`;

// chat runs in the page: everything a web client does with the HTTP API
// and the WebSocket (JSON subprotocol), from the page's own origin.
async function chat(node, run) {
  const post = async (path, body, token) => {
    const r = await fetch(node.http + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(token ? { Authorization: "Bearer " + token } : {}) },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };
  const alice = "alice-" + run, bob = "bob-" + run;
  for (const u of [alice, bob]) {
    const r = await post("/v1/register", { user_id: u, password: "password-" + u });
    if (r.status !== 201) throw new Error(`register ${u}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  const tokens = {};
  for (const u of [alice, bob]) tokens[u] = (await post("/v1/login", { user_id: u, password: "password-" + u })).body.token;

  const open = (user) => new Promise((resolve, reject) => {
    const ws = new WebSocket(node.ws, "actorim.v1.json");
    const waiting = new Map();
    const pushes = [];
    ws.onerror = () => reject(new Error("websocket error"));
    ws.onmessage = (ev) => {
      const f = JSON.parse(ev.data);
      if (f.push) {
        pushes.push(...f.push.entries);
        ws.send(JSON.stringify({ pushAck: { seq: f.push.entries.at(-1).seq } }));
      }
      if (f.id && waiting.has(f.id)) { waiting.get(f.id)(f); waiting.delete(f.id); }
    };
    let next = 1;
    const request = (body) => new Promise((ok) => { const id = next++; waiting.set(id, ok); ws.send(JSON.stringify({ id, ...body })); });
    ws.onopen = async () => {
      const ok = await request({ login: { token: tokens[user], deviceId: "page", platform: "PLATFORM_WEB" } });
      if (!ok.loginOk) reject(new Error("login: " + JSON.stringify(ok)));
      resolve({ ws, request, pushes, protocol: ws.protocol });
    };
  });
  const a = await open(alice), b = await open(bob);
  const ack = await a.request({ send: { clientMsgId: "page-1", to: bob, content: { text: "hello from another origin" } } });
  const until = Date.now() + 5000;
  while (b.pushes.length === 0 && Date.now() < until) await new Promise((ok) => setTimeout(ok, 20));
  const hist = await fetch(`${node.http}/v1/conversations/p:${alice}:${bob}/messages?limit=10`, { headers: { Authorization: "Bearer " + tokens[bob] } });
  const history = await hist.json();
  a.ws.close(); b.ws.close();
  return {
    protocol: a.protocol,
    ack: ack.sendAck,
    pushed: b.pushes.map((e) => e.message?.content?.text),
    historyStatus: hist.status,
    history: (history.entries || []).map((e) => e.message?.content?.text),
  };
}

// tryLogin runs in a page: a cross-origin POST whose answer the browser
// may or may not hand over.
async function tryLogin(node) {
  try {
    const r = await fetch(node.http + "/v1/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: "nobody", password: "password-nobody" }),
    });
    return "answered " + r.status;
  } catch (err) {
    return "refused: " + err.name;
  }
}

let browser, allowedPage, otherPage, node;

before(async () => {
  allowedPage = await servePage(PAGE);
  otherPage = await servePage(PAGE);
  node = await startNode(["--cors-origins", allowedPage.origin]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await node?.stop();
  await allowedPage?.close();
  await otherPage?.close();
});

test("a page on a listed origin registers, logs in, chats and reads history through CORS", async () => {
  await withPage(browser, "cors-allowed", async (page) => {
    await page.goto(allowedPage.origin);
    const run = Date.now().toString(36);
    const got = await page.evaluate(chat, { http: node.http, ws: node.ws }, run);
    assert.equal(got.protocol, "actorim.v1.json");
    assert.equal(got.ack.clientMsgId, "page-1");
    assert.deepEqual(got.pushed, ["hello from another origin"]);
    assert.equal(got.historyStatus, 200);
    assert.deepEqual(got.history, ["hello from another origin"]);
  });
});

test("a page on an origin the node does not list gets no answer", async () => {
  await withPage(browser, "cors-other-origin", async (page) => {
    await page.goto(otherPage.origin);
    assert.equal(await page.evaluate(tryLogin, { http: node.http }), "refused: TypeError");
  });
  // The same page is answered once the node lists it (the refusal above
  // is CORS, not the node being unreachable).
  await withPage(browser, "cors-listed-origin", async (page) => {
    await page.goto(allowedPage.origin);
    assert.equal(await page.evaluate(tryLogin, { http: node.http }), "answered 401");
  });
});
