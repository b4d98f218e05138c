// The device state across reconnects, against a fake server in the test (no
// imnode): the server keeps DeviceState per connection and every login starts
// in the foreground, so the client sends background=true again after each
// login while the app is in the background, and nothing once it is back in
// the foreground.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Client,
  ErrorCode,
  Frame,
  LoginOK,
  Pong,
  Result,
  decodeFrame,
  encodeFrame,
  type Codec,
  type WebSocketConstructor,
  type WebSocketLike,
} from "../src/index.js";

/** One connection of the fake server: the frames the client sent on it. */
interface Conn {
  ws: WebSocketLike;
  got: Frame[];
  /** Closes the connection from the server's side (an abnormal close: the client reconnects). */
  drop(): void;
}

/**
 * A fake server: each socket the client opens answers Login with LoginOK, Ping
 * with Pong and every other request with answer(frame) (an empty Result by
 * default).
 */
function fakeServer(codec: Codec, answer: (f: Frame) => Frame["body"] = () => ({ $case: "result", value: Result.fromJSON({}) })) {
  const conns: Conn[] = [];
  const WS = class implements WebSocketLike {
    binaryType = "";
    onopen: ((ev: unknown) => void) | null = null;
    onmessage: ((ev: { data: unknown }) => void) | null = null;
    onclose: ((ev: { code: number; reason: string }) => void) | null = null;
    onerror: ((ev: unknown) => void) | null = null;
    #conn: Conn;
    #open = true;
    constructor(_url: string, _protocols?: string | string[]) {
      this.#conn = { ws: this, got: [], drop: () => this.#close(1006, "") };
      conns.push(this.#conn);
      setTimeout(() => this.onopen?.({}), 0);
    }
    #reply(f: Frame): void {
      const data = encodeFrame(codec, f);
      setTimeout(() => {
        if (this.#open) this.onmessage?.({ data: typeof data === "string" ? data : data.slice().buffer });
      }, 0);
    }
    #close(code: number, reason: string): void {
      if (!this.#open) return;
      this.#open = false;
      setTimeout(() => this.onclose?.({ code, reason }), 0);
    }
    send(data: string | Uint8Array): void {
      if (!this.#open) return;
      const f = decodeFrame(codec, data);
      this.#conn.got.push(f);
      if (f.body?.$case === "login") {
        this.#reply({ id: f.id, body: { $case: "loginOk", value: LoginOK.fromJSON({ userId: "u1", streamFromSeq: "1" }) } });
      } else if (f.body?.$case === "ping") {
        this.#reply({ id: f.id, body: { $case: "pong", value: Pong.fromJSON({}) } });
      } else if (f.id !== 0) {
        this.#reply({ id: f.id, body: answer(f) });
      }
    }
    close(code = 1000, reason = ""): void {
      this.#close(code, reason);
    }
  };
  return { conns, WebSocket: WS as unknown as WebSocketConstructor };
}

function cases(c: Conn): (string | undefined)[] {
  return c.got.map((f) => f.body?.$case);
}
function deviceStates(c: Conn): boolean[] {
  return c.got.flatMap((f) => (f.body?.$case === "deviceState" ? [f.body.value.background] : []));
}

async function until(cond: () => boolean, what: () => string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function newClient(WebSocket: WebSocketConstructor, codec: Codec): Client {
  return new Client({ url: "ws://fake/ws", token: "t", deviceId: "d1", codec, WebSocket, backoff: { baseMs: 1, maxMs: 5 } });
}

for (const codec of ["proto", "json"] as Codec[]) {
  test(`a background state is sent again after every reconnect, a foreground one is not (${codec})`, async () => {
    const srv = fakeServer(codec);
    const c = newClient(srv.WebSocket, codec);
    try {
      await c.connect();
      await c.setDeviceState(true);
      assert.equal(c.background, true);
      assert.deepEqual(cases(srv.conns[0]!), ["login", "deviceState"]);
      assert.deepEqual(deviceStates(srv.conns[0]!), [true]);

      // The connection drops: the next login is followed by DeviceState background=true.
      let logins = 0;
      c.on("login", () => {
        logins++;
      });
      srv.conns[0]!.drop();
      await until(() => logins === 1, () => `${logins} logins`);
      assert.equal(srv.conns.length, 2);
      assert.deepEqual(cases(srv.conns[1]!), ["login", "deviceState"], "DeviceState sent right after the login");
      assert.deepEqual(deviceStates(srv.conns[1]!), [true]);
      await c.ping();
      assert.deepEqual(cases(srv.conns[1]!), ["login", "deviceState", "ping"]);

      // Once more (each login starts in the foreground on the server).
      srv.conns[1]!.drop();
      await until(() => logins === 2, () => `${logins} logins`);
      assert.deepEqual(deviceStates(srv.conns[2]!), [true]);

      // Back in the foreground: sent once, and not after the next login.
      await c.setDeviceState(false);
      assert.deepEqual(deviceStates(srv.conns[2]!), [true, false]);
      srv.conns[2]!.drop();
      await until(() => logins === 3, () => `${logins} logins`);
      await c.ping();
      assert.deepEqual(cases(srv.conns[3]!), ["login", "ping"]);
    } finally {
      c.close();
    }
  });
}

test("setDeviceState while not online resolves at once; the next login sends it", async () => {
  const srv = fakeServer("proto");
  const c = newClient(srv.WebSocket, "proto");
  try {
    await c.setDeviceState(true); // before connect: nothing to send yet
    assert.equal(srv.conns.length, 0);
    await c.connect();
    await until(() => deviceStates(srv.conns[0]!).length === 1, () => cases(srv.conns[0]!).join(","));
    assert.deepEqual(cases(srv.conns[0]!), ["login", "deviceState"]);
    assert.deepEqual(deviceStates(srv.conns[0]!), [true]);

    // Closed, then connected again: still remembered.
    c.close();
    await c.setDeviceState(false);
    await c.setDeviceState(true);
    assert.equal(srv.conns.length, 1);
    await c.connect();
    await until(() => deviceStates(srv.conns[1]!).length === 1, () => cases(srv.conns[1]!).join(","));
    assert.deepEqual(cases(srv.conns[1]!), ["login", "deviceState"]);
  } finally {
    c.close();
  }
});

test("a refused re-send goes to the error event; a refused setDeviceState rejects", async () => {
  const refuse = (): Frame["body"] => ({
    $case: "error",
    value: { code: ErrorCode.ERR_BAD_REQUEST, message: "no", retryAfterMs: 0 },
  });
  const srv = fakeServer("proto", refuse);
  const c = newClient(srv.WebSocket, "proto");
  const errors: unknown[] = [];
  c.on("error", (e) => {
    errors.push(e);
  });
  try {
    await c.setDeviceState(true);
    await c.connect();
    await until(() => errors.length === 1, () => `${errors.length} errors`);
    assert.equal((errors[0] as { code?: string }).code, "ERR_BAD_REQUEST");
    await assert.rejects(c.setDeviceState(true), (e: { code?: string }) => e.code === "ERR_BAD_REQUEST");
  } finally {
    c.close();
  }
});
