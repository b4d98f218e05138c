// Profiles through the SDK against a real imnode ($IMNODE_BIN): set, get,
// search with paging, the "profile" event of a friend's change, blocking,
// and coded refusals.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ActorimError, type Codec, type Profile } from "../src/index.js";
import { NodeSuite, until } from "./imnode.js";

const suite = new NodeSuite();
const uid = (p: string) => suite.uid(p);
const online = (user: string, codec?: Codec) => suite.online(user, codec);

for (const codec of ["proto", "json"] as Codec[]) {
  test(`set, get and search a profile (${codec})`, async () => {
    const [a, b] = [uid("pa"), uid("pb")];
    const ca = await online(a, codec);
    const cb = await online(b, codec);
    const nick = `Ällo ${codec} ${a}`;
    const p = await ca.setProfile({ nickname: `  ${nick} `, avatarUrl: "https://img.example.com/a.png", extra: '{ "k": [1, 2] }' });
    assert.equal(p?.userId, a);
    assert.equal(p?.nickname, nick);
    assert.equal(p?.extra, '{"k":[1,2]}');
    assert.equal(typeof p?.updatedAtMs, "bigint");

    // Only the fields given change.
    const q = await ca.setProfile({ avatarUrl: "" });
    assert.equal(q?.nickname, nick);
    assert.equal(q?.avatarUrl, "");

    // bob sees the nickname but not extra (not a friend); unknown users are left out.
    const got = await cb.getProfiles([a, "nobody-zz", b]);
    assert.deepEqual(got.map((x) => x.userId), [a, b]);
    assert.equal(got[0]!.nickname, nick);
    assert.equal(got[0]!.extra, "");

    const found = await cb.searchUsers(nick.toUpperCase());
    assert.deepEqual(found.users.map((x) => x.userId), [a]);
    const byId = await cb.searchUsers(a);
    assert.equal(byId.users[0]?.userId, a);
  });
}

test("search pages with nextCursor", async () => {
  const common = `pager${Date.now()}`;
  const users: string[] = [];
  for (let i = 0; i < 3; i++) {
    const u = uid("pp");
    await (await online(u)).setProfile({ nickname: `${common} ${i}` });
    users.push(u);
  }
  const c = await online(uid("ps"));
  const seen: string[] = [];
  let cursor = "";
  for (let i = 0; i < 10; i++) {
    const page = await c.searchUsers(common, { limit: 1, cursor });
    seen.push(...page.users.map((x) => x.userId));
    if (!(cursor = page.nextCursor)) break;
  }
  assert.deepEqual(seen, users);
});

test("a friend's change arrives as a profile event, with extra; a block hides the profile", async () => {
  const [a, b] = [uid("fa"), uid("fb")];
  const ca = await online(a);
  const cb = await online(b);
  await ca.friendRequest(b);
  await cb.friendAccept(a);
  const events: Profile[] = [];
  cb.on("profile", (p) => {
    events.push(p);
  });
  await ca.setProfile({ nickname: "Friendly", extra: '{"mood":"ok"}' });
  await until(() => events.length === 1, () => `bob got ${events.length} profile events`);
  assert.equal(events[0]!.userId, a);
  assert.equal(events[0]!.extra, '{"mood":"ok"}');
  assert.equal((await cb.getProfiles([a]))[0]?.extra, '{"mood":"ok"}');

  await ca.block(b);
  assert.deepEqual(await cb.getProfiles([a]), []);
  assert.deepEqual((await cb.searchUsers("Friendly")).users.filter((x) => x.userId === a), []);
});

test("refusals carry their codes", async () => {
  const c = await online(uid("pr"));
  const refused = async (p: Promise<unknown>, code: string) =>
    assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof ActorimError);
      assert.equal(e.code, code);
      return true;
    });
  await refused(c.setProfile({}), "ERR_BAD_REQUEST");
  await refused(c.setProfile({ nickname: "x".repeat(65) }), "ERR_BAD_REQUEST");
  await refused(c.setProfile({ nickname: "a\u0007b" }), "ERR_BAD_REQUEST");
  await refused(c.setProfile({ avatarUrl: "javascript:alert(1)" }), "ERR_BAD_REQUEST");
  await refused(c.setProfile({ extra: "[1]" }), "ERR_BAD_REQUEST");
  await refused(c.setProfile({ extra: `{"a":"${"x".repeat(4096)}"}` }), "ERR_PAYLOAD_TOO_LARGE");
  await refused(c.getProfiles(Array.from({ length: 101 }, (_, i) => `u${i}`)), "ERR_BAD_REQUEST");
  await refused(c.searchUsers(""), "ERR_BAD_REQUEST");
  await refused(c.searchUsers("a", { limit: 51 }), "ERR_BAD_REQUEST");
});
