/**
 * Where a client keeps the highest timeline seq its app has processed, so
 * that a new connection resumes after it (Login.lastSeq). Methods may be
 * synchronous or return promises.
 */
export interface SeqStore {
  /** The saved seq, or undefined when nothing was saved (a new device). */
  load(): bigint | undefined | Promise<bigint | undefined>;
  save(seq: bigint): void | Promise<void>;
}

/** Keeps the seq in memory: a page reload or a new process starts over. */
export class MemorySeqStore implements SeqStore {
  constructor(private seq?: bigint) {}
  load(): bigint | undefined {
    return this.seq;
  }
  save(seq: bigint): void {
    this.seq = seq;
  }
}

/**
 * Keeps the seq in the browser's localStorage under `key` (one key per user
 * and device, e.g. `actorim.seq.alice.web-1`). Without localStorage (Node, a
 * private window that refuses it) it behaves as a MemorySeqStore.
 */
export class LocalStorageSeqStore implements SeqStore {
  #memory = new MemorySeqStore();
  constructor(private readonly key: string) {}

  #storage(): Storage | undefined {
    try {
      return (globalThis as { localStorage?: Storage }).localStorage;
    } catch {
      return undefined; // access itself may throw (blocked storage)
    }
  }

  load(): bigint | undefined {
    const s = this.#storage();
    if (!s) return this.#memory.load();
    const v = s.getItem(this.key);
    if (v === null || !/^[0-9]+$/.test(v)) return undefined;
    return BigInt(v);
  }

  save(seq: bigint): void {
    const s = this.#storage();
    if (!s) return this.#memory.save(seq);
    s.setItem(this.key, seq.toString());
  }
}
