import { HistoryResult } from "./gen/clientpb/client.js";
import { ActorimError, ClientErrorCode } from "./errors.js";

/** The HTTP base of a WebSocket URL: ws://h:p/ws becomes http://h:p. */
export function httpUrlOf(wsUrl: string): string {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  u.pathname = u.pathname.replace(/\/ws\/?$/, "") || "/";
  u.search = "";
  u.hash = "";
  return u.toString().replace(/\/$/, "");
}

/** What POST /v1/login answers. */
export interface LoginResult {
  userId: string;
  token: string;
  expiresAtMs: number;
}

/** Options of the HTTP helpers. */
export interface HttpOptions {
  /** The fetch to use; default globalThis.fetch. */
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

async function call(
  base: string,
  path: string,
  init: { method: string; token?: string; body?: unknown },
  o: HttpOptions = {},
): Promise<unknown> {
  const f = o.fetch ?? globalThis.fetch;
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  if (init.token) headers["Authorization"] = `Bearer ${init.token}`;
  let r: Response;
  try {
    // No cookies: the credentials are the bearer token (protocol.md, CORS).
    r = await f(base.replace(/\/$/, "") + path, {
      method: init.method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      credentials: "omit",
      signal: o.signal,
    });
  } catch (e) {
    throw new ActorimError(ClientErrorCode.Http, `${init.method} ${path}: ${String(e)}`);
  }
  const text = await r.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!r.ok) {
    const err = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    const ra = Number(r.headers.get("Retry-After"));
    throw new ActorimError(
      err?.code ?? ClientErrorCode.Http,
      err?.message ?? `${init.method} ${path}: HTTP ${r.status}`,
      ra > 0 ? ra * 1000 : undefined,
      r.status,
    );
  }
  return body;
}

/** POST /v1/register. Rejects with ERR_CONFLICT when the id is taken. */
export async function register(httpUrl: string, userId: string, password: string, o?: HttpOptions): Promise<void> {
  await call(httpUrl, "/v1/register", { method: "POST", body: { user_id: userId, password } }, o);
}

/** POST /v1/login: a token for the WebSocket Login and the HTTP API. */
export async function login(httpUrl: string, userId: string, password: string, o?: HttpOptions): Promise<LoginResult> {
  const b = (await call(httpUrl, "/v1/login", { method: "POST", body: { user_id: userId, password } }, o)) as {
    user_id: string;
    token: string;
    expires_at_ms: number;
  };
  return { userId: b.user_id, token: b.token, expiresAtMs: b.expires_at_ms };
}

/**
 * GET /v1/conversations/{id}/messages: one page of a conversation, newest
 * first, entries with seq below beforeSeq (0 or absent: from the newest).
 */
export async function history(
  httpUrl: string,
  token: string,
  conversationId: string,
  page: { beforeSeq?: bigint; limit?: number } = {},
  o?: HttpOptions,
): Promise<HistoryResult> {
  const q = new URLSearchParams();
  if (page.beforeSeq) q.set("before_seq", page.beforeSeq.toString());
  if (page.limit) q.set("limit", String(page.limit));
  const qs = q.toString();
  const path = `/v1/conversations/${encodeURIComponent(conversationId)}/messages${qs ? "?" + qs : ""}`;
  const body = await call(httpUrl, path, { method: "GET", token }, o);
  return HistoryResult.fromJSON(body ?? {});
}
