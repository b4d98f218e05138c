// What the app keeps in localStorage: the node it talks to, a stable device
// id for this browser, and the signed-in session (token and user). The last
// processed seq is the SDK's LocalStorageSeqStore, under seqKey().
import { wsUrlOf } from "@actorim/sdk";

/** The node's HTTP base: ?node=http://host:port (for `vite dev` and the tests), else the page's own origin. */
export const nodeUrl: string = (new URLSearchParams(location.search).get("node") ?? location.origin).replace(/\/$/, "");
export const wsUrl: string = wsUrlOf(nodeUrl);
/** The application (tenant) whose users sign in here: ?app=<id>; absent: the default app. */
export const appId: string | undefined = new URLSearchParams(location.search).get("app") || undefined;
const appPart = appId ? `.${appId}` : "";

export interface Session {
  userId: string;
  token: string;
  expiresAtMs: number;
}

const sessionKey = `actorim.session.${nodeUrl}${appPart}`;

export function deviceId(): string {
  let id = localStorage.getItem("actorim.device");
  if (!id) {
    id = "web-" + crypto.randomUUID().replace(/-/g, "").slice(0, 16);
    localStorage.setItem("actorim.device", id);
  }
  return id;
}

export function seqKey(userId: string): string {
  return `actorim.seq.${nodeUrl}${appPart}.${userId}.${deviceId()}`;
}

export function loadSession(): Session | undefined {
  try {
    const s = JSON.parse(localStorage.getItem(sessionKey) ?? "null") as Session | null;
    return s && s.token && s.expiresAtMs > Date.now() ? s : undefined;
  } catch {
    return undefined;
  }
}

export function saveSession(s: Session | undefined): void {
  if (s) localStorage.setItem(sessionKey, JSON.stringify(s));
  else localStorage.removeItem(sessionKey);
}
