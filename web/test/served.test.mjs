// The app as a newcomer meets it: imnode serves it from its own origin at
// / (the build embedded in the binary, `--web-app embedded`, the default),
// with its Content-Security-Policy; two users register and chat with no
// CORS configured and no policy violation. With --web-app off, / is 404.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startNode, launchBrowser, withContexts } from "./harness.mjs";

const run = Date.now().toString(36).slice(-5);
const T = { timeout: 10000 };
let browser, node;

before(async () => {
  node = await startNode([]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await node?.stop();
});

async function signUp(page, user, violations) {
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  await page.goto(node.http + "/");
  await page.type("#login-user", user);
  await page.type("#login-password", "password-" + user);
  await page.click("#register");
  await page.waitForSelector('#conn[data-state="online"]', T);
}

test("the node serves the app at /, and two users chat on it", async () => {
  const index = await fetch(node.http + "/");
  assert.equal(index.status, 200);
  assert.match(index.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
  assert.match(await index.text(), /<title>actorim<\/title>/);

  const violations = [];
  await withContexts(browser, "served-app", async (open) => {
    const alice = `sa${run}`, bob = `sb${run}`;
    const [pa, pb] = [await open(), await open()];
    await signUp(pa, alice, violations);
    await signUp(pb, bob, violations);
    await pa.type("#new-chat-user", bob);
    await pa.click("#new-chat");
    await pa.waitForSelector("#composer", T);
    await pa.type("#composer", "served by the node");
    await pa.keyboard.press("Enter");
    await pb.waitForSelector(`.conv[data-conv="p:${alice}:${bob}"]`, T);
    await pb.click(`.conv[data-conv="p:${alice}:${bob}"]`);
    await pb.waitForFunction(
      () => [...document.querySelectorAll(".chat .msg .text")].some((e) => e.textContent === "served by the node"),
      T,
    );
  });
  assert.deepEqual(violations, [], "Content-Security-Policy violations");
});

test("--web-app off serves nothing at /", async () => {
  const off = await startNode(["--web-app", "off"]);
  try {
    assert.equal((await fetch(off.http + "/")).status, 404);
  } finally {
    await off.stop();
  }
});
