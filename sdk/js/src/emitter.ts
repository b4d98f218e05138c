/** A listener may return a promise; see {@link Emitter.emitAsync}. */
export type Listener<A> = (arg: A) => void | Promise<void>;

/** A tiny typed event emitter: `Events` maps each event name to its argument. */
export class Emitter<Events extends object> {
  #listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Adds a listener; the returned function removes it. */
  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => this.off(event, fn);
  }

  off<K extends keyof Events>(event: K, fn: Listener<Events[K]>): void {
    this.#listeners.get(event)?.delete(fn as Listener<never>);
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /** Calls the listeners and does not wait for them; their failures go to onError. */
  protected emit<K extends keyof Events>(event: K, arg: Events[K], onError: (e: unknown) => void): void {
    for (const fn of [...(this.#listeners.get(event) ?? [])]) {
      try {
        const r = (fn as Listener<Events[K]>)(arg);
        if (r && typeof (r as Promise<void>).then === "function") (r as Promise<void>).catch(onError);
      } catch (e) {
        onError(e);
      }
    }
  }

  /** Calls the listeners one after the other, awaiting each. */
  protected async emitAsync<K extends keyof Events>(event: K, arg: Events[K]): Promise<void> {
    for (const fn of [...(this.#listeners.get(event) ?? [])]) {
      await (fn as Listener<Events[K]>)(arg);
    }
  }
}
