// Starts a real imnode for the tests: the binary in $IMNODE_BIN, a fresh data
// directory, a free port on 127.0.0.1, short push retries.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { after, before } from "node:test";
import { Client, login, register, type ClientOptions, type Codec, type WebSocketConstructor } from "../src/index.js";

const bin = process.env.IMNODE_BIN;
if (!bin) throw new Error("IMNODE_BIN is not set: build imnode (make sdk-test does) and point IMNODE_BIN at it");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

export class Node {
  proc?: ChildProcess;
  log = "";
  private constructor(
    readonly dir: string,
    readonly port: number,
    /** Flags given to imnode beside the defaults (e.g. --media-max-bytes). */
    readonly extraArgs: string[] = [],
  ) {}

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }
  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts a node; extraArgs are more imnode flags (e.g. ["--media-max-bytes", "1000"]). */
  static async start(extraArgs: string[] = []): Promise<Node> {
    const n = new Node(mkdtempSync(join(tmpdir(), "actorim-sdk-")), await freePort(), extraArgs);
    await n.run();
    return n;
  }

  /** Starts the process (again, on the same data and port) and waits for /readyz. */
  async run(): Promise<void> {
    const args = [
      "--data", this.dir,
      "--listen", `127.0.0.1:${this.port}`,
      "--login-rate", "-1",
      "--push-retry", "500ms",
      "--push-retry-max", "2s",
      ...this.extraArgs,
    ];
    const p = spawn(bin!, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = p;
    const keep = (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-20000);
    };
    p.stdout!.on("data", keep);
    p.stderr!.on("data", keep);
    let exited = false;
    p.once("exit", () => (exited = true));
    const deadline = Date.now() + 30000;
    for (;;) {
      if (exited) throw new Error(`imnode exited at start:\n${this.log}`);
      try {
        const r = await fetch(`${this.httpUrl}/readyz`);
        if (r.status === 200) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`imnode not ready in 30 s:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL: no shutdown, no goodbye to the clients. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await gone;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Registers a user and returns a token. */
  async user(id: string): Promise<string> {
    await register(this.httpUrl, id, "password-" + id);
    return (await login(this.httpUrl, id, "password-" + id)).token;
  }

  /** A Client of this node for the token (not connected yet). */
  client(token: string, o: Partial<ClientOptions> = {}): Client {
    return new Client({
      url: this.url,
      token,
      deviceId: o.deviceId ?? "dev-" + Math.random().toString(36).slice(2, 10),
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      backoff: { baseMs: 100, maxMs: 1000 },
      ...o,
    });
  }
}

/** Resolves when cond() holds, polling; rejects with what() after timeoutMs. */
export async function until(cond: () => boolean, what: () => string, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A WebSocket that lets a test see and drop what arrives. */
export function tapSocket(onIncoming: (data: unknown, ws: WebSocket) => boolean): WebSocketConstructor {
  return class Tap {
    inner: WebSocket;
    onopen: ((ev: unknown) => void) | null = null;
    onmessage: ((ev: { data: unknown }) => void) | null = null;
    onclose: ((ev: { code: number; reason: string }) => void) | null = null;
    onerror: ((ev: unknown) => void) | null = null;
    constructor(url: string, protocols?: string | string[]) {
      this.inner = new WebSocket(url, protocols);
      this.inner.binaryType = "arraybuffer";
      this.inner.onopen = (ev) => this.onopen?.(ev);
      this.inner.onmessage = (ev) => {
        if (onIncoming(ev.data, this.inner)) this.onmessage?.({ data: ev.data });
      };
      this.inner.onclose = (ev) => this.onclose?.({ code: ev.code, reason: ev.reason });
      this.inner.onerror = (ev) => this.onerror?.(ev);
    }
    get binaryType(): string {
      return this.inner.binaryType;
    }
    set binaryType(t: string) {
      this.inner.binaryType = t as "arraybuffer";
    }
    send(d: string | Uint8Array): void {
      this.inner.send(d);
    }
    close(code?: number, reason?: string): void {
      this.inner.close(code, reason);
    }
  };
}

/**
 * One node for a test file: started before its tests and stopped after them,
 * with the clients they opened through online() closed first.
 */
export class NodeSuite {
  node!: Node;
  readonly clients: Client[] = [];
  #n = 0;

  constructor() {
    before(async () => {
      this.node = await Node.start();
    });
    after(async () => {
      for (const c of this.clients) c.close();
      await this.node?.stop();
    });
  }

  /** A fresh user id starting with prefix. */
  uid(prefix: string): string {
    return `${prefix}${++this.#n}`;
  }

  /** A client of user (registered at first use), connected. */
  async online(user: string, codec: Codec = "proto"): Promise<Client> {
    const c = this.node.client(await this.node.user(user), { codec });
    this.clients.push(c);
    await c.connect();
    return c;
  }
}
