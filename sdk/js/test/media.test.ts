// The media entry point (@actorim/sdk/media) against a real imnode: a
// resumable (tus) and a simple upload of a PNG, sent to another user who gets
// the image content with its dimensions and downloads it byte-identical
// through a signed link; refusals with their codes.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import { ActorimError, type Client, type Entry } from "../src/index.js";
import { downloadFile, fileInfo, mediaContent, mediaKind, mediaOf, signedLink, uploadFile } from "../src/media.js";
import { Node, until } from "./imnode.js";
import { makePng } from "./png.js";

let node: Node;
let small: Node;
let userN = 0;
const uid = (p: string) => `${p}m${++userN}`;
const clients: Client[] = [];

before(async () => {
  [node, small] = await Promise.all([Node.start(), Node.start(["--media-max-bytes", "1000"])]);
});
after(async () => {
  for (const c of clients) c.close();
  await Promise.all([node?.stop(), small?.stop()]);
});

test("mediaKind follows the MIME type as client.MediaKind does", () => {
  assert.equal(mediaKind("image/png"), "image");
  assert.equal(mediaKind("Audio/Ogg; codecs=opus"), "audio");
  assert.equal(mediaKind("video/mp4"), "video");
  assert.equal(mediaKind("application/pdf"), "file");
  assert.equal(mediaKind(""), "file");
});

for (const resumable of [true, false]) {
  test(`an image uploaded ${resumable ? "resumably (tus)" : "in one POST"} reaches bob, who downloads it through a signed link`, async () => {
    const [a, b] = [uid("alice"), uid("bob")];
    const [ta, tb] = [await node.user(a), await node.user(b)];
    const ca = node.client(ta);
    const cb = node.client(tb);
    clients.push(ca, cb);
    const got: Entry[] = [];
    cb.on("message", (e) => void got.push(e));
    await Promise.all([ca.connect(), cb.connect()]);

    const png = makePng(64, 48, resumable ? 1 : 2);
    const progress: number[] = [];
    // A Blob through tus in small chunks, a Uint8Array in one POST: both inputs.
    const input = resumable ? new Blob([png as Uint8Array<ArrayBuffer>]) : png;
    const f = await uploadFile(node.httpUrl, ta, input, {
      name: "grad.png",
      resumable,
      chunkSize: resumable ? 1024 : undefined,
      onProgress: (sent, total) => {
        assert.equal(total, png.length);
        progress.push(sent);
      },
    });
    assert.equal(f.mime_type, "image/png");
    assert.equal(f.size, png.length);
    assert.equal(f.sha256, createHash("sha256").update(png).digest("hex"));
    assert.equal(f.width, 64);
    assert.equal(f.height, 48);
    assert.equal(f.name, "grad.png");
    assert.equal(f.thumbnail?.mime_type, "image/jpeg");
    assert.ok(f.blurhash);
    assert.equal(progress.at(-1), png.length, `progress ${progress.join(",")}`);
    if (resumable) assert.ok(progress.length > 2, `tus progress in chunks: ${progress.join(",")}`);

    const ack = await ca.send(b, mediaContent(f, { caption: "a gradient" }));
    await until(() => got.length === 1, () => `bob got ${got.length}`);
    const m = got[0]!.item?.$case === "message" ? got[0]!.item.value : undefined;
    assert.equal(m?.id, ack.msgId);
    const media = mediaOf(m?.content);
    assert.equal(media?.kind, "image");
    assert.equal(media?.media.fileId, f.file_id);
    assert.equal(media?.media.width, 64);
    assert.equal(media?.media.height, 48);
    assert.equal(media?.media.size, BigInt(png.length));
    assert.equal(media?.media.mimeType, "image/png");
    assert.equal(media?.media.caption, "a gradient");
    assert.ok(media?.media.thumbnail && media.media.thumbnail.width > 0);

    // Bob: without the message he may not; with it, a signed link serves the bytes without a token.
    await assert.rejects(signedLink(node.httpUrl, tb, f.file_id), (e: unknown) => e instanceof ActorimError && e.code === "ERR_FORBIDDEN");
    const link = await signedLink(node.httpUrl, tb, f.file_id, m!.id);
    assert.match(link.url, /^http:\/\/127\.0\.0\.1:\d+\/v1\/media\//);
    assert.ok(link.thumbUrl?.startsWith(node.httpUrl + "/v1/media/"));
    assert.ok(link.expiresAt.getTime() > Date.now());
    const r = await fetch(link.url);
    assert.equal(r.status, 200);
    assert.deepEqual(new Uint8Array(await r.arrayBuffer()), png);
    const t = await fetch(link.thumbUrl!);
    assert.equal(t.status, 200);
    assert.equal(t.headers.get("Content-Type"), "image/jpeg");

    // And with the token.
    const blob = await downloadFile(node.httpUrl, tb, f.file_id, m!.id);
    assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), png);
    const thumb = await downloadFile(node.httpUrl, tb, f.file_id, m!.id, { thumb: true });
    assert.ok(thumb.size > 0);
    assert.equal((await fileInfo(node.httpUrl, tb, f.file_id, m!.id)).sha256, f.sha256);
  });
}

test("a file over --media-max-bytes is refused with ERR_PAYLOAD_TOO_LARGE, simple and resumable", async () => {
  const t = await small.user(uid("carol"));
  const big = new Uint8Array(2000).fill(7);
  for (const resumable of [false, true]) {
    await assert.rejects(uploadFile(small.httpUrl, t, big, { name: "big.bin", resumable }), (e: unknown) => {
      assert.ok(e instanceof ActorimError, String(e));
      assert.equal(e.code, "ERR_PAYLOAD_TOO_LARGE", `${resumable}: ${e.message}`);
      assert.equal(e.status, 413);
      return true;
    });
  }
  // Under the limit it goes through (any type: a plain file).
  const f = await uploadFile(small.httpUrl, t, new TextEncoder().encode("hello"), { name: "hi.txt" });
  assert.equal(mediaKind(f.mime_type), "file");
  assert.equal(mediaContent(f).kind?.$case, "file");
});

test("a bad token is ERR_UNAUTHENTICATED", async () => {
  await assert.rejects(
    uploadFile(node.httpUrl, "nope", new Uint8Array([1, 2, 3]), { name: "x" }),
    (e: unknown) => e instanceof ActorimError && e.code === "ERR_UNAUTHENTICATED" && e.status === 401,
  );
});
