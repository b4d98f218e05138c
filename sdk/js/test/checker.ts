// The SDK's checker run: PAIRS sender/receiver pairs (2 × PAIRS connections)
// through the SDK against a real imnode for DURATION seconds, the node
// SIGKILLed and restarted once half-way. Each sender sends the numbers 1, 2,
// 3, ... to its receiver, one at a time at RATE a second, each awaited (so
// its order is the order they must arrive in); then every receiver must have
// every acknowledged number exactly once, in order, and nothing else.
// Prints a JSON report; exits 1 on any loss, duplicate or reordering.
//
//   IMNODE_BIN=bin/imnode npm run checker            # 100 pairs, 60 s, 5 msgs/s each
//   PAIRS=20 DURATION=20 RATE=10 IMNODE_BIN=... npm run checker
import { Node, until } from "./imnode.js";
import type { Client } from "../src/index.js";

const PAIRS = Number(process.env.PAIRS ?? 100);
const DURATION_S = Number(process.env.DURATION ?? 60);
const RATE = Number(process.env.RATE ?? 5);
const run = Date.now().toString(36).slice(-6);

interface Pair {
  sender: Client;
  receiver: Client;
  to: string;
  acked: number[]; // numbers whose send was acknowledged, in order
  got: number[]; // numbers the receiver processed, in order
  failed: number;
}

async function pool<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

async function main(): Promise<void> {
  const node = await Node.start();
  const t0 = Date.now();
  let reconnects = 0;
  try {
    const pairs = await pool(PAIRS, 8, async (i): Promise<Pair> => {
      const s = `ck${run}s${i}`, r = `ck${run}r${i}`;
      const sender = node.client(await node.user(s), { deviceId: "sender" });
      const receiver = node.client(await node.user(r), { deviceId: "receiver" });
      const p: Pair = { sender, receiver, to: r, acked: [], got: [], failed: 0 };
      receiver.on("message", (e) => {
        const m = e.item?.$case === "message" ? e.item.value : undefined;
        if (m?.content?.kind?.$case === "text") {
          p.got.push(Number(m.content.kind.value));
        }
      });
      for (const c of [sender, receiver]) {
        c.on("login", () => {
          reconnects++;
        });
      }
      await receiver.connect();
      await sender.connect();
      return p;
    });
    reconnects = 0; // count only the logins after the first
    const setup = (Date.now() - t0) / 1000;

    const start = Date.now(), end = start + DURATION_S * 1000;
    let killed = false;
    const restart = (async () => {
      await new Promise((r) => setTimeout(r, (DURATION_S * 1000) / 2));
      await node.kill();
      killed = true;
      await node.run(); // the same data directory and port
    })();
    await Promise.all(
      pairs.map(async (p, i) => {
        await new Promise((r) => setTimeout(r, (i * 1000) / RATE / PAIRS)); // spread the senders' phases
        for (let k = 1; Date.now() < end; k++) {
          const due = Date.now() + 1000 / RATE;
          try {
            await p.sender.send(p.to, String(k));
            p.acked.push(k);
          } catch {
            p.failed++;
          }
          const wait = due - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      }),
    );
    await restart;
    const sent = pairs.reduce((n, p) => n + p.acked.length, 0);
    // Drain: every acknowledged number reaches its receiver.
    await until(
      () => pairs.every((p) => p.got.length >= p.acked.length),
      () => `${pairs.filter((p) => p.got.length < p.acked.length).length} receivers still short`,
      30000,
    ).catch(() => {});

    let lost = 0, duplicated = 0, reordered = 0, unexpected = 0;
    for (const p of pairs) {
      const seen = new Set<number>();
      let last = 0;
      for (const k of p.got) {
        if (seen.has(k)) duplicated++;
        else if (k < last) reordered++;
        seen.add(k);
        last = Math.max(last, k);
      }
      const acked = new Set(p.acked);
      for (const k of p.acked) if (!seen.has(k)) lost++;
      for (const k of seen) if (!acked.has(k)) unexpected++;
    }
    const report = {
      pairs: PAIRS, connections: 2 * PAIRS, duration_s: DURATION_S, rate_per_sender: RATE,
      setup_s: setup, node_restarted: killed, acked: sent,
      received: pairs.reduce((n, p) => n + p.got.length, 0),
      failed_sends: pairs.reduce((n, p) => n + p.failed, 0),
      reconnects, lost, duplicated, reordered, unexpected,
      verdict: lost + duplicated + reordered + unexpected === 0 && killed && sent > 0 ? "PASS" : "FAIL",
    };
    console.log(JSON.stringify(report, null, 2));
    for (const p of pairs) {
      p.sender.close();
      p.receiver.close();
    }
    process.exitCode = report.verdict === "PASS" ? 0 : 1;
  } finally {
    await node.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
