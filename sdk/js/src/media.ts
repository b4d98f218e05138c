// The SDK's media entry point, @actorim/sdk/media: uploads (a simple POST or
// resumable with tus-js-client), the Content that sends an uploaded file,
// signed links and downloads (protocol.md, "The media HTTP API"). It is a
// separate entry so the core bundle does not carry tus-js-client.
import { Upload, type DetailedError } from "tus-js-client";
import type { Content, Media } from "./gen/clientpb/client.js";
import { ActorimError, ClientErrorCode } from "./errors.js";
import { errorOf, request, trimBase, type HttpOptions } from "./http.js";

/** A thumbnail as the node describes it. */
export interface FileThumbnail {
  mime_type: string;
  width: number;
  height: number;
  size: number;
}

/**
 * An uploaded file as the node describes it: the answer of an upload and of
 * GET /v1/media/{id}/info (snake_case, numbers; zero fields are absent).
 */
export interface FileInfo {
  file_id: string;
  name?: string;
  /** Sniffed by the node from the bytes. */
  mime_type: string;
  size: number;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
  width?: number;
  height?: number;
  thumbnail?: FileThumbnail;
  blurhash?: string;
  created_at_ms?: number;
  /** The uploader's storage use after this file, and the limit (uploader only). */
  quota_used?: number;
  quota_limit?: number;
}

/** Options of {@link uploadFile}. */
export interface UploadOptions extends HttpOptions {
  /** The file's name (the node keeps it; the type is sniffed from the bytes). */
  name: string;
  /** Called as bytes go out: sent so far, and the total. */
  onProgress?: (sent: number, total: number) => void;
  /**
   * true: a tus upload (resumes after a dropped connection); false: one
   * POST /v1/media. Default: tus from {@link RESUMABLE_FROM} bytes on.
   */
  resumable?: boolean;
  /** Bytes per tus PATCH; default: the whole rest of the file in one. */
  chunkSize?: number;
  /** Delays between tus retries, ms; default [0, 1000, 3000, 5000]. */
  retryDelays?: number[];
}

/** The size from which {@link uploadFile} is resumable unless told otherwise. */
export const RESUMABLE_FROM = 1 << 20;

/** A signed link: fetching it needs no token until expiresAt. */
export interface SignedLink {
  /** Absolute URL of the file. */
  url: string;
  /** Absolute URL of its thumbnail, when it has one. */
  thumbUrl?: string;
  expiresAt: Date;
}

/** The content kind a file of this MIME type is sent as (image, audio, video, or file). */
export function mediaKind(mimeType: string): "image" | "audio" | "video" | "file" {
  const major = mimeType.split(";")[0]!.trim().toLowerCase().split("/")[0];
  return major === "image" || major === "audio" || major === "video" ? major : "file";
}

/**
 * The Content that sends an uploaded file: `client.send(to, mediaContent(f))`.
 * The kind follows the file's sniffed type (mediaKind); the node fills the
 * file's own fields (name, type, size, hash, dimensions, thumbnail).
 */
export function mediaContent(
  file: Pick<FileInfo, "file_id" | "mime_type">,
  o: { caption?: string; kind?: "image" | "audio" | "video" | "file"; durationMs?: number; voice?: boolean; width?: number; height?: number } = {},
): Content {
  const m: Media = {
    fileId: file.file_id,
    name: "",
    mimeType: "",
    size: 0n,
    sha256: "",
    width: o.width ?? 0,
    height: o.height ?? 0,
    durationMs: o.durationMs ?? 0,
    thumbnail: undefined,
    blurhash: "",
    caption: o.caption ?? "",
    voice: o.voice ?? false,
  };
  return { kind: { $case: o.kind ?? mediaKind(file.mime_type), value: m } };
}

/** The Media of a content, when it is an image, audio, video or file. */
export function mediaOf(c: Content | undefined): { kind: "image" | "audio" | "video" | "file"; media: Media } | undefined {
  const k = c?.kind;
  if (!k) return undefined;
  switch (k.$case) {
    case "image":
    case "audio":
    case "video":
    case "file":
      return { kind: k.$case, media: k.value };
  }
  return undefined;
}

function mediaPath(fileId: string, suffix: string, msgId?: bigint | string | number): string {
  const q = msgId !== undefined && String(msgId) !== "0" ? `?msg=${encodeURIComponent(String(msgId))}` : "";
  return `/v1/media/${encodeURIComponent(fileId)}${suffix}${q}`;
}

/** GET /v1/media/{id}/info: a file's description (msgId: a message carrying it, for anyone but the uploader). */
export async function fileInfo(
  httpUrl: string,
  token: string,
  fileId: string,
  msgId?: bigint | string | number,
  o?: HttpOptions,
): Promise<FileInfo> {
  return (await (await request(httpUrl, mediaPath(fileId, "/info", msgId), { method: "GET", token }, o)).json()) as FileInfo;
}

// Node's build of tus-js-client reads Buffers and streams, the browser's Blobs.
const nodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBuffer | Uint8Array): Uint8Array } }).Buffer;
const isNode = typeof (globalThis as { window?: unknown }).window === "undefined" && nodeBuffer !== undefined;

async function tusInput(file: Blob | Uint8Array): Promise<Blob | Uint8Array> {
  if (!isNode) return file instanceof Uint8Array ? new Blob([file as Uint8Array<ArrayBuffer>]) : file;
  return nodeBuffer!.from(file instanceof Uint8Array ? file : new Uint8Array(await file.arrayBuffer()));
}

function tusUpload(httpUrl: string, token: string, input: Blob | Uint8Array, size: number, o: UploadOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const up = new Upload(input as Blob, {
      endpoint: trimBase(httpUrl) + "/v1/uploads/",
      headers: { Authorization: `Bearer ${token}` },
      metadata: { filename: o.name },
      uploadSize: size,
      chunkSize: o.chunkSize,
      retryDelays: o.retryDelays ?? [0, 1000, 3000, 5000],
      storeFingerprintForResuming: false,
      // Retry network failures and 5xx/429, never a refusal (413, 415, 403...).
      onShouldRetry: (err) => {
        const s = (err as DetailedError).originalResponse?.getStatus() ?? 0;
        return s === 0 || s === 429 || s >= 500;
      },
      onProgress: (sent, total) => o.onProgress?.(sent, total),
      onSuccess: () => {
        const id = (up.url ?? "").replace(/\/$/, "").split("/").pop();
        if (id) resolve(decodeURIComponent(id));
        else reject(new ActorimError(ClientErrorCode.Http, "tus: no upload URL"));
      },
      onError: (err) => {
        const res = (err as DetailedError).originalResponse;
        if (res) {
          reject(errorOf("tus upload", res.getStatus(), res.getBody() ?? "", res.getHeader("Retry-After") ?? null));
        } else {
          reject(new ActorimError(ClientErrorCode.Http, `tus upload: ${String(err)}`));
        }
      },
    });
    o.signal?.addEventListener("abort", () => {
      void up.abort(true);
      reject(new ActorimError(ClientErrorCode.Http, "upload aborted"));
    });
    up.start();
  });
}

/**
 * Uploads a file and answers the node's description of it (file_id,
 * mime_type, size, sha256, and for images width, height, thumbnail,
 * blurhash). Resumable (tus) from RESUMABLE_FROM bytes on or when
 * o.resumable is true; one POST otherwise. Refusals reject with an
 * ActorimError: ERR_PAYLOAD_TOO_LARGE, ERR_QUOTA_EXCEEDED,
 * ERR_MEDIA_TYPE_REFUSED, ERR_UNAUTHENTICATED...
 */
export async function uploadFile(httpUrl: string, token: string, file: Blob | Uint8Array, o: UploadOptions): Promise<FileInfo> {
  const size = file instanceof Uint8Array ? file.byteLength : file.size;
  if (o.resumable ?? size >= RESUMABLE_FROM) {
    const id = await tusUpload(httpUrl, token, await tusInput(file), size, o);
    return fileInfo(httpUrl, token, id, undefined, o);
  }
  o.onProgress?.(0, size);
  const body = file instanceof Uint8Array ? new Blob([file as Uint8Array<ArrayBuffer>]) : file;
  const r = await request(httpUrl, `/v1/media?name=${encodeURIComponent(o.name)}`, { method: "POST", token, body }, o);
  const f = (await r.json()) as FileInfo;
  o.onProgress?.(size, size);
  return f;
}

/**
 * POST /v1/media/{id}/links: signed links to a file and its thumbnail,
 * usable without a token (in <img src>) until they expire. msgId names a
 * message carrying the file, which anyone but the uploader needs.
 */
export async function signedLink(
  httpUrl: string,
  token: string,
  fileId: string,
  msgId?: bigint | string | number,
  o?: HttpOptions,
): Promise<SignedLink> {
  const json = msgId !== undefined && String(msgId) !== "0" ? { msg: String(msgId) } : {};
  const r = await request(httpUrl, mediaPath(fileId, "/links", undefined), { method: "POST", token, json }, o);
  const b = (await r.json()) as { url: string; thumb_url?: string; expires_at_ms: number };
  const base = trimBase(httpUrl) + "/";
  return {
    url: new URL(b.url, base).toString(),
    thumbUrl: b.thumb_url ? new URL(b.thumb_url, base).toString() : undefined,
    expiresAt: new Date(b.expires_at_ms),
  };
}

/**
 * Downloads a file (or, with o.thumb, its thumbnail) with the token: its
 * bytes as a Blob (with the file's type). msgId names a message carrying
 * the file, which anyone but the uploader needs.
 */
export async function downloadFile(
  httpUrl: string,
  token: string,
  fileId: string,
  msgId?: bigint | string | number,
  o: HttpOptions & { thumb?: boolean } = {},
): Promise<Blob> {
  const r = await request(httpUrl, mediaPath(fileId, o.thumb ? "/thumb" : "", msgId), { method: "GET", token }, o);
  return r.blob();
}
