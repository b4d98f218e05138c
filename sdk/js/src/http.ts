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
  /** The user's application, when it is not the default one. */
  app?: string;
  userId: string;
  token: string;
  expiresAtMs: number;
}

/** Options of the HTTP helpers. */
export interface HttpOptions {
  /** The fetch to use; default globalThis.fetch. */
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /**
   * The application (tenant) of the user, on a deployment of several
   * (register and login); absent: the default app.
   */
  app?: string;
}

/** base without its trailing slash, so that a path can follow it. */
export const trimBase = (base: string): string => base.replace(/\/$/, "");

/** The ActorimError of an HTTP answer that is not 2xx: its JSON error body, or CLIENT_HTTP. */
export function errorOf(what: string, status: number, text: string, retryAfter: string | null): ActorimError {
  let err: { code?: string; message?: string } | undefined;
  try {
    err = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
  } catch {
    err = undefined;
  }
  const ra = Number(retryAfter);
  return new ActorimError(err?.code ?? ClientErrorCode.Http, err?.message ?? `${what}: HTTP ${status}`, ra > 0 ? ra * 1000 : undefined, status);
}

/**
 * A request to the node's HTTP API: the token as a bearer, never cookies
 * (protocol.md, CORS); json is sent as JSON, body as bytes. A network
 * failure or an answer that is not 2xx rejects with an ActorimError.
 */
export async function request(
  base: string,
  path: string,
  init: { method: string; token?: string; body?: BodyInit; json?: unknown },
  o: HttpOptions = {},
): Promise<Response> {
  const f = o.fetch ?? globalThis.fetch;
  const headers: Record<string, string> = {};
  if (init.token) headers["Authorization"] = `Bearer ${init.token}`;
  let body = init.body;
  if (init.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(init.json);
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/octet-stream";
  }
  let r: Response;
  try {
    r = await f(trimBase(base) + path, { method: init.method, headers, body, credentials: "omit", signal: o.signal });
  } catch (e) {
    throw new ActorimError(ClientErrorCode.Http, `${init.method} ${path}: ${String(e)}`);
  }
  if (!r.ok) throw errorOf(`${init.method} ${path}`, r.status, await r.text(), r.headers.get("Retry-After"));
  return r;
}

/** A JSON call: body sent as JSON, the answer's JSON (undefined when empty or not JSON). */
async function call(
  base: string,
  path: string,
  init: { method: string; token?: string; body?: unknown },
  o: HttpOptions = {},
): Promise<unknown> {
  const r = await request(base, path, { method: init.method, token: init.token, json: init.body }, o);
  const text = await r.text();
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

/** POST /v1/register. Rejects with ERR_CONFLICT when the id is taken. */
export async function register(httpUrl: string, userId: string, password: string, o?: HttpOptions): Promise<void> {
  await call(httpUrl, "/v1/register", { method: "POST", body: credentials(userId, password, o) }, o);
}

/** The body of register and login: the app only when one is named. */
const credentials = (userId: string, password: string, o?: HttpOptions) =>
  o?.app ? { app: o.app, user_id: userId, password } : { user_id: userId, password };

/** POST /v1/login: a token for the WebSocket Login and the HTTP API. */
export async function login(httpUrl: string, userId: string, password: string, o?: HttpOptions): Promise<LoginResult> {
  const b = (await call(httpUrl, "/v1/login", { method: "POST", body: credentials(userId, password, o) }, o)) as {
    app?: string;
    user_id: string;
    token: string;
    expires_at_ms: number;
  };
  const r: LoginResult = { userId: b.user_id, token: b.token, expiresAtMs: b.expires_at_ms };
  if (b.app) r.app = b.app;
  return r;
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
