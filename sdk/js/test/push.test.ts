// Offline push through the SDK against a real imnode ($IMNODE_BIN):
// RegisterPush and DeviceState are answered with an empty Result, a bad
// provider or token is refused with ERR_BAD_REQUEST, and the DeviceState the
// client sends again after a reconnect is accepted. (The re-send itself is
// checked without a node in devicestate.test.ts; the push webhook is the
// server's e2e tests' business.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { ActorimError, type Codec, type Entry } from "../src/index.js";
import { NodeSuite, until } from "./imnode.js";

const suite = new NodeSuite();
const uid = (p: string) => suite.uid(p);
const online = (user: string, codec?: Codec) => suite.online(user, codec);

const refused = (p: Promise<unknown>, code: string) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ActorimError, `not an ActorimError: ${e}`);
    assert.equal(e.code, code);
    return true;
  });

for (const codec of ["proto", "json"] as Codec[]) {
  test(`registerPush, unregisterPush and setDeviceState resolve (${codec})`, async () => {
    const c = await online(uid("push"), codec);
    await c.registerPush("fcm", "fcm-token-" + "A".repeat(150));
    await c.registerPush("apns", "0123456789abcdef".repeat(4)); // replaces the device's earlier one
    await c.registerPush("my_push.v2-x", "t".repeat(4096)); // the longest token
    await c.unregisterPush();
    await c.unregisterPush(); // nothing registered: still fine
    await c.setDeviceState(true);
    assert.equal(c.background, true);
    await c.setDeviceState(false);
    assert.equal(c.background, false);
  });
}

test("a bad provider or token is refused with ERR_BAD_REQUEST", async () => {
  const c = await online(uid("pushbad"));
  await refused(c.registerPush("Bad Provider!", "tok"), "ERR_BAD_REQUEST");
  await refused(c.registerPush("", "tok"), "ERR_BAD_REQUEST");
  await refused(c.registerPush("p".repeat(33), "tok"), "ERR_BAD_REQUEST");
  await refused(c.registerPush("fcm", "t".repeat(4097)), "ERR_BAD_REQUEST");
  await refused(c.registerPush("fcm", "tok\u0001en"), "ERR_BAD_REQUEST");
  await refused(c.registerPush("fcm", "tök"), "ERR_BAD_REQUEST");
  // The connection is still usable.
  await c.registerPush("fcm", "tok");
  assert.equal(c.state, "online");
});

test("the background state sent again after a reconnect is accepted", async () => {
  const c = await online(uid("pushbg"));
  const errors: unknown[] = [];
  c.on("error", (e) => {
    errors.push(e);
  });
  let logins = 0;
  c.on("login", () => {
    logins++;
  });
  await c.setDeviceState(true);
  c.reconnect();
  await until(() => logins === 1, () => `${logins} logins`);
  await c.ping(); // answered after the DeviceState sent at login
  assert.deepEqual(errors, []);
  assert.equal(c.background, true);

  // And after the node restarts.
  await suite.node.kill();
  await suite.node.run();
  await until(() => logins === 2, () => `${logins} logins`);
  await c.ping();
  assert.deepEqual(errors, []);
});

for (const codec of ["proto", "json"] as Codec[]) {
  test(`send with silent: the recipient's entry is flagged silent (${codec})`, async () => {
    const [a, b] = [uid("silenta"), uid("silentb")];
    const ca = await online(a, codec);
    const cb = await online(b, codec);
    const got: Entry[] = [];
    cb.on("message", (e) => {
      got.push(e);
    });
    await ca.send(b, "loud");
    await ca.send(b, "quiet", { silent: true });
    await until(() => got.length === 2, () => `${got.length} messages`);
    const silent = got.map((e) => (e.item?.$case === "message" ? e.item.value.silent : undefined));
    assert.deepEqual(silent, [false, true]);
  });
}
