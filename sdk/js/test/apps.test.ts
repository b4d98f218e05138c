// Applications (tenants) through the SDK against a real imnode: register
// and login with an app; the same user ids in the app and in the default
// app are different users.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ActorimError, login, register, type Client, type Entry } from "../src/index.js";
import { Node, until } from "./imnode.js";

let node: Node;
const clients: Client[] = [];

before(async () => {
  node = await Node.start();
});
after(async () => {
  for (const c of clients) c.close();
  await node?.stop();
});

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** An admin token (HS256) signed with the node's generated admin secret. */
function adminToken(): string {
  const secret = readFileSync(join(node.dir, "admin.secret"), "utf8").trim();
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ sub: "ops", role: "admin", iat: now, exp: now + 600 }));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

test("the same user ids in an app and in the default app never meet", async () => {
  const r = await fetch(`${node.httpUrl}/v1/admin/apps`, {
    method: "POST",
    headers: { Authorization: `Bearer ${adminToken()}`, "Content-Type": "application/json" },
    body: JSON.stringify({ id: "sdkapp", settings: {} }),
  });
  assert.equal(r.status, 201, await r.clone().text());
  const online = async (user: string, app?: string) => {
    await register(node.httpUrl, user, "password-" + user, { app });
    const tok = await login(node.httpUrl, user, "password-" + user, { app });
    assert.equal(tok.app, app);
    const c = node.client(tok.token);
    clients.push(c);
    await c.connect();
    return c;
  };
  const [aliceApp, bobApp, bobDefault] = [await online("alice", "sdkapp"), await online("bob", "sdkapp"), await online("bob")];
  const textOf = (e: Entry) => {
    const m = e.item?.$case === "message" ? e.item.value : undefined;
    return m?.content?.kind?.$case === "text" ? m.content.kind.value : "?";
  };
  const got: string[] = [];
  const gotDefault: string[] = [];
  bobApp.on("message", (e) => {
    got.push(textOf(e));
  });
  bobDefault.on("message", (e) => {
    gotDefault.push(textOf(e));
  });
  await aliceApp.send("bob", "in the app");
  await until(() => got.length === 1, () => `bob of the app got ${got.length}`);
  assert.deepEqual(got, ["in the app"]);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(gotDefault, []);

  await assert.rejects(login(node.httpUrl, "alice", "password-alice", { app: "nope" }), (e: ActorimError) => e.code === "ERR_NOT_FOUND");
  await assert.rejects(login(node.httpUrl, "alice", "password-alice"), (e: ActorimError) => e.code === "ERR_UNAUTHENTICATED");
});
