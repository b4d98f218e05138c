// The SDK against a real imnode ($IMNODE_BIN): chat, resume across a SIGKILL
// of the node, dedup of re-pushed entries, send retry without duplicates,
// coded refusals and 64-bit values.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  ActorimError,
  ConversationType,
  Frame,
  Platform,
  decodeFrame,
  encodeFrame,
  history,
  type Client,
  type Codec,
  type Entry,
  type SendAck,
} from "../src/index.js";
import { Node, tapSocket, until } from "./imnode.js";

let node: Node;
let userN = 0;
const uid = (p: string) => `${p}${++userN}`;
const clients: Client[] = [];
function track(c: Client): Client {
  clients.push(c);
  return c;
}

before(async () => {
  node = await Node.start();
});
after(async () => {
  for (const c of clients) c.close();
  await node?.stop();
});

function textOf(e: Entry): string {
  const m = e.item?.$case === "message" ? e.item.value : undefined;
  return m?.content?.kind?.$case === "text" ? m.content.kind.value : `<${m?.content?.kind?.$case}>`;
}

/** Collects what a client's app sees: message entries in delivery order. */
function inbox(c: Client): Entry[] {
  const got: Entry[] = [];
  c.on("message", (e) => {
    got.push(e);
  });
  return got;
}

function assertExactlyOnceInOrder(got: Entry[], want: string[]): void {
  const texts = got.map(textOf);
  assert.equal(new Set(texts).size, texts.length, `duplicates delivered: ${texts.join(",")}`);
  assert.deepEqual([...texts].sort(), [...want].sort(), "delivered set differs from acked set");
  for (let i = 1; i < got.length; i++) {
    assert.equal(got[i]!.seq, got[i - 1]!.seq + 1n, `gap or disorder at ${i}: ${got[i - 1]!.seq} then ${got[i]!.seq}`);
  }
}

for (const codec of ["proto", "json"] as Codec[]) {
  test(`two clients chat both ways (${codec})`, async () => {
    const [a, b] = [uid("alice"), uid("bob")];
    const ca = track(node.client(await node.user(a), { codec }));
    const cb = track(node.client(await node.user(b), { codec }));
    const inA = inbox(ca);
    const inB = inbox(cb);
    await Promise.all([ca.connect(), cb.connect()]);
    const acks: SendAck[] = [];
    for (let i = 0; i < 5; i++) {
      acks.push(await ca.send(b, `a${i}`));
      acks.push(await cb.send(a, { kind: { $case: "text", value: `b${i}` } }));
    }
    await until(() => inA.length === 5 && inB.length === 5, () => `A got ${inA.length}, B got ${inB.length}`);
    assert.deepEqual(inB.map(textOf), ["a0", "a1", "a2", "a3", "a4"]);
    assert.deepEqual(inA.map(textOf), ["b0", "b1", "b2", "b3", "b4"]);
    for (const e of inB) {
      assert.equal(typeof e.seq, "bigint");
      const m = e.item!.value;
      assert.equal(m.from, a);
      assert.equal(m.conversationId, [a, b].sort().join(":").replace(/^/, "p:"));
    }
    for (const k of acks) {
      assert.equal(typeof k.msgId, "bigint");
      assert.equal(typeof k.seq, "bigint");
      assert.ok(k.msgId > 0n && k.seq > 0n && k.sentAtMs > 1_600_000_000_000n);
    }
    // The ack's msgId is the id the recipient sees.
    assert.equal(inB[0]!.item!.value.id, acks[0]!.msgId);
    // History over WebSocket and over HTTP agree (newest first).
    const conv = acks[0]!.conversationId;
    const ws = await ca.history(conv, { limit: 3 });
    assert.deepEqual(ws.entries.map(textOf), ["b4", "a4", "b3"]);
    const http = await history(ca.httpUrl, await tokenOf(a), conv, { limit: 3 });
    assert.deepEqual(http.entries.map(textOf), ["b4", "a4", "b3"]);
    assert.equal(ca.state, "online");
  });
}

async function tokenOf(user: string): Promise<string> {
  const { login } = await import("../src/index.js");
  return (await login(node.httpUrl, user, "password-" + user)).token;
}

test("a coded refusal rejects with its code", async () => {
  const c = track(node.client(await node.user(uid("carol"))));
  await c.connect();
  await assert.rejects(c.send("no-such-user-zz", "anyone?"), (e: unknown) => {
    assert.ok(e instanceof ActorimError);
    assert.equal(e.code, "ERR_UNKNOWN_RECIPIENT");
    return true;
  });
  // ...and the HTTP API's errors too.
  await assert.rejects(tokenOf("no-such-user-zz"), (e: unknown) => e instanceof ActorimError && e.status === 401);
  assert.equal(c.unackedSends, 0);
});

describe("64-bit values", () => {
  const big = 2n ** 63n + 5n; // beyond Number.MAX_SAFE_INTEGER and int64
  for (const codec of ["proto", "json"] as Codec[]) {
    test(`${codec} round-trips uint64 seq and ids as bigint`, () => {
      const f: Frame = {
        id: 7,
        body: {
          $case: "sendAck",
          value: { clientMsgId: "x", msgId: big + 1n, seq: big, sentAtMs: 1795359015892n, conversationId: "", duplicate: false },
        },
      };
      const wire = encodeFrame(codec, f);
      if (codec === "json") {
        assert.equal(typeof wire, "string");
        assert.match(wire as string, /"seq":"9223372036854775813"/);
      } else assert.ok(wire instanceof Uint8Array);
      const back = decodeFrame(codec, wire);
      assert.equal(back.body?.$case, "sendAck");
      const v = back.body!.value as { seq: bigint; msgId: bigint };
      assert.equal(v.seq, big);
      assert.equal(v.msgId, big + 1n);
    });
  }
  test("a Frame's proto3 JSON round trip: 64-bit as strings, enum names, lowerCamelCase", () => {
    const f: Frame = {
      id: 9,
      body: {
        $case: "push",
        value: {
          entries: [
            {
              seq: 2n ** 64n - 1n,
              item: {
                $case: "message",
                value: {
                  id: big,
                  conversationId: "g:team",
                  conversationType: ConversationType.CONVERSATION_TYPE_GROUP,
                  from: "alice",
                  to: "",
                  fromDevice: "d1",
                  clientMsgId: "c1",
                  sentAtMs: 1795359015892n,
                  content: { kind: { $case: "text", value: "hi" } },
                  mentions: ["bob"],
                  silent: false,
                  recalled: false,
                },
              },
            },
          ],
        },
      },
    };
    const text = encodeFrame("json", f) as string;
    const j = JSON.parse(text);
    const m = j.push.entries[0].message;
    assert.equal(j.push.entries[0].seq, "18446744073709551615");
    assert.equal(m.id, "9223372036854775813");
    assert.equal(m.sentAtMs, "1795359015892");
    assert.equal(m.conversationType, "CONVERSATION_TYPE_GROUP");
    assert.equal(m.conversationId, "g:team");
    assert.deepEqual(m.content, { text: "hi" });
    assert.deepEqual(decodeFrame("json", text), f);
    // Login: an enum name and an optional uint64 present at 0.
    const login: Frame = {
      id: 1,
      body: { $case: "login", value: { token: "t", deviceId: "d", platform: Platform.PLATFORM_WEB, lastSeq: 0n } },
    };
    assert.equal(
      encodeFrame("json", login),
      '{"id":1,"login":{"token":"t","deviceId":"d","platform":"PLATFORM_WEB","lastSeq":"0"}}',
    );
    assert.deepEqual(decodeFrame("json", encodeFrame("json", login)), login);
    assert.deepEqual(decodeFrame("proto", encodeFrame("proto", login)), login);
  });

  test("unknown enums decode as their number (proto) or UNRECOGNIZED (JSON), and are never sent", async () => {
    const typing = (conversationType: number): Frame => ({
      id: 3,
      body: { $case: "typing", value: { to: "x", conversationType, typing: true } },
    });
    // A number this client does not know (a newer server) stays a number in proto...
    const p = decodeFrame("proto", encodeFrame("proto", typing(9)));
    assert.equal(p.body?.$case === "typing" && p.body.value.conversationType, 9);
    // ...an unknown name in JSON becomes UNRECOGNIZED (-1).
    const j = decodeFrame("json", '{"id":3,"typing":{"to":"x","conversationType":"CONVERSATION_TYPE_NEW"}}');
    assert.equal(j.body?.$case === "typing" && j.body.value.conversationType, ConversationType.UNRECOGNIZED);
    // The SDK refuses to send it, with either codec.
    for (const codec of ["proto", "json"] as Codec[]) {
      assert.throws(() => encodeFrame(codec, typing(ConversationType.UNRECOGNIZED)), (e: unknown) => {
        assert.ok(e instanceof ActorimError);
        assert.equal(e.code, "CLIENT_INVALID");
        return true;
      });
    }
    const c = track(node.client(await node.user(uid("uma"))));
    await assert.rejects(
      c.send("x", "y", { conversationType: ConversationType.UNRECOGNIZED }),
      (e: unknown) => e instanceof ActorimError && e.code === "CLIENT_INVALID",
    );
    assert.equal(c.unackedSends, 0);
  });

  test("JSON strings and numbers beyond 2^53 decode exactly", () => {
    const f = decodeFrame("json", '{"push":{"entries":[{"seq":"9007199254740993"},{"seq":12}]},"unknownField":1}');
    assert.equal(f.body?.$case, "push");
    const seqs = (f.body!.value as { entries: Entry[] }).entries.map((e) => e.seq);
    assert.deepEqual(seqs, [9007199254740993n, 12n]);
  });
});

test("re-pushed entries reach the app once (slow handler past the push retry)", async () => {
  const [a, b] = [uid("dora"), uid("eve")];
  const ca = track(node.client(await node.user(a)));
  const raw = new Map<bigint, number>(); // seq -> times pushed on the wire
  const cb = track(
    node.client(await node.user(b), {
      codec: "json",
      WebSocket: tapSocket((data) => {
        const f = decodeFrame("json", data as string);
        if (f.body?.$case === "push") for (const e of f.body.value.entries) raw.set(e.seq, (raw.get(e.seq) ?? 0) + 1);
        return true;
      }),
    }),
  );
  const seen: string[] = [];
  let slow = true;
  cb.on("message", async (e) => {
    seen.push(textOf(e));
    if (slow) {
      slow = false;
      // The app takes longer than the node's push retry (500 ms, doubling):
      // nothing is acked meanwhile, so the node pushes the entries again.
      await until(() => [...raw.values()].some((n) => n >= 2), () => "a re-push", 10000);
    }
  });
  await Promise.all([ca.connect(), cb.connect()]);
  const want = ["m0", "m1", "m2"];
  for (const t of want) await ca.send(b, t);
  await until(() => seen.length >= 3 && cb.lastSeq === [...raw.keys()].reduce((x, y) => (x > y ? x : y), 0n), () => `seen ${seen}`);
  assert.ok([...raw.values()].some((n) => n >= 2), "the node never re-pushed: the test proves nothing");
  assert.deepEqual(seen, want);
  // Once acked, the node stops re-pushing: wait past two more retry periods' worth of pushes.
  const before = [...raw.values()].reduce((x, y) => x + y, 0);
  await ca.send(b, "m3");
  await until(() => seen.length === 4, () => `seen ${seen}`);
  assert.deepEqual(seen, [...want, "m3"]);
  assert.ok([...raw.values()].reduce((x, y) => x + y, 0) >= before + 1);
});

test("a send whose ack was lost is re-sent with the same clientMsgId: one message, duplicate ack", async () => {
  const [a, b] = [uid("fred"), uid("gina")];
  let dropAcks = true;
  let dropped = 0;
  const ca = track(
    node.client(await node.user(a), {
      codec: "json",
      WebSocket: tapSocket((data, ws) => {
        const f = decodeFrame("json", data as string);
        if (dropAcks && f.body?.$case === "sendAck") {
          dropped++;
          dropAcks = false;
          ws.close(4000, "test: ack lost"); // the node stored it; the client never hears
          return false;
        }
        return true;
      }),
    }),
  );
  const cb = track(node.client(await node.user(b)));
  const inB = inbox(cb);
  await Promise.all([ca.connect(), cb.connect()]);
  const ack = await ca.send(b, "only once", { clientMsgId: "fixed-id-1" });
  assert.equal(dropped, 1, "no ack was dropped: the test proves nothing");
  assert.equal(ack.clientMsgId, "fixed-id-1");
  assert.equal(ack.duplicate, true, "the retry was not recognised as the same message");
  await cb.send(a, "marker"); // B's own message: after it, nothing more of A's can be in flight to B
  const after = await ca.send(b, "after");
  await until(() => inB.length === 2, () => `B got ${inB.map(textOf)}`);
  assert.deepEqual(inB.map(textOf), ["only once", "after"]);
  assert.equal(inB[0]!.item?.value.id, ack.msgId);
  assert.ok(after.msgId > ack.msgId);
});

test("reconnect and resume with the node killed (SIGKILL) and restarted while messages flow", async () => {
  const [a, b] = [uid("hana"), uid("ivan")];
  const ca = track(node.client(await node.user(a), { codec: "json" }));
  const cb = track(node.client(await node.user(b)));
  const inB = inbox(cb);
  const statesB: string[] = [];
  cb.on("state", (s) => {
    statesB.push(s);
  });
  await Promise.all([ca.connect(), cb.connect()]);
  const total = 80;
  const acked: string[] = [];
  let killed = false;
  let inFlightAtKill = -1;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const t = `r${i}`;
    sends.push(ca.send(b, t).then(() => void acked.push(t)));
    if (i === 30) {
      await until(() => acked.length >= 20, () => `acked ${acked.length}`);
      inFlightAtKill = ca.unackedSends;
      await node.kill();
      killed = true;
      setTimeout(() => void node.run(), 300);
    }
    if (i % 5 === 0) await new Promise((r) => setTimeout(r, killed ? 5 : 10)); // a steady flow
  }
  await Promise.all(sends);
  assert.ok(inFlightAtKill > 0, "no send was in flight at the kill");
  assert.equal(acked.length, total);
  await until(() => inB.length >= total, () => `B got ${inB.length} of ${total}`, 30000);
  assertExactlyOnceInOrder(inB, acked);
  assert.ok(statesB.includes("offline") && statesB.lastIndexOf("online") > statesB.indexOf("offline"), `B states ${statesB}`);
});

test("sends in flight when the node is killed are retried after the restart without duplicates", async () => {
  const [a, b] = [uid("jon"), uid("kim")];
  const ca = track(node.client(await node.user(a)));
  const cb = track(node.client(await node.user(b), { codec: "json" }));
  const inB = inbox(cb);
  await Promise.all([ca.connect(), cb.connect()]);
  const want = Array.from({ length: 40 }, (_, i) => `k${i}`);
  const acks = want.map((t) => ca.send(b, t, { clientMsgId: `id-${t}` }));
  const inFlight = ca.unackedSends;
  await node.kill(); // at once: some stored, some not, few or no acks read
  assert.ok(inFlight > 0);
  await node.run();
  const got = await Promise.all(acks);
  got.forEach((k, i) => assert.equal(k.clientMsgId, `id-k${i}`));
  assert.equal(new Set(got.map((k) => k.msgId)).size, want.length, "two sends share a message id");
  await until(() => inB.length >= want.length, () => `B got ${inB.length}`, 30000);
  // Nothing more arrives: a marker from A, sent after all of them, is the next entry B gets.
  await ca.send(b, "marker");
  await until(() => inB.length >= want.length + 1, () => `B got ${inB.length}`);
  assertExactlyOnceInOrder(inB, [...want, "marker"]);
  assert.deepEqual(
    inB.map((e) => e.item?.value.clientMsgId),
    [...want.map((t) => `id-${t}`), inB.at(-1)!.item?.value.clientMsgId],
  );
});

test("a kicked client (same device logs in elsewhere) does not reconnect", async () => {
  const token = await node.user(uid("lea"));
  const c1 = track(node.client(token, { deviceId: "same-device" }));
  const kicks: unknown[] = [];
  c1.on("kick", (k) => {
    kicks.push(k);
  });
  await c1.connect();
  const c2 = track(node.client(token, { deviceId: "same-device" }));
  await c2.connect();
  await until(() => c1.state === "closed", () => `c1 ${c1.state}`);
  assert.equal(kicks.length, 1);
  await assert.rejects(c1.send("x", "y"), (e: unknown) => e instanceof ActorimError && e.code === "CLIENT_CLOSED");
  // Were c1 reconnecting, it would replace c2 in turn (its backoff is at most 1 s here).
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(c2.state, "online");
  await c2.ping();
});
