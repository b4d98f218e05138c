// What the browser tests run against: a real imnode (the binary in
// $IMNODE_BIN) on a fresh data directory, pages served from an origin of
// their own, and Debian's Chromium driven by puppeteer-core. Screenshots of
// failed tests go to $ARTIFACTS (default web/test-artifacts).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const here = dirname(fileURLToPath(import.meta.url));
export const artifacts = process.env.ARTIFACTS || join(here, "..", "test-artifacts");

/** A free TCP port on loopback (free a moment ago). */
export async function freePort() {
  const srv = createServer();
  await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
  const { port } = srv.address();
  await new Promise((ok) => srv.close(ok));
  return port;
}

/**
 * Starts imnode with extra flags; resolves once /readyz answers 200.
 * kill() stops it at once (SIGKILL) and start() starts it again on the same
 * port and data directory.
 */
export async function startNode(extra = []) {
  const bin = process.env.IMNODE_BIN;
  if (!bin) throw new Error("IMNODE_BIN is not set: build imnode and point IMNODE_BIN at it (make web-test does)");
  const dir = mkdtempSync(join(tmpdir(), "actorim-web-"));
  const port = await freePort();
  const args = ["--data", join(dir, "data"), "--listen", `127.0.0.1:${port}`, "--login-rate", "-1", ...extra];
  const http = `http://127.0.0.1:${port}`;
  let proc, log = "";
  const exited = () => new Promise((ok) => (proc.exitCode !== null || proc.signalCode !== null ? ok() : proc.once("exit", ok)));
  async function start() {
    proc = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
    proc.stderr.on("data", (b) => { log = (log + b).slice(-8192); });
    const deadline = Date.now() + 15000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`imnode exited (${proc.exitCode}):\n${log}`);
      try {
        if ((await fetch(`${http}/readyz`)).status === 200) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) { proc.kill("SIGKILL"); throw new Error(`imnode not ready in 15 s:\n${log}`); }
      await new Promise((ok) => setTimeout(ok, 50));
    }
  }
  await start();
  return {
    http,
    ws: `ws://127.0.0.1:${port}/ws`,
    log: () => log,
    start,
    async kill() {
      proc.kill("SIGKILL");
      await exited();
    },
    async stop() {
      proc.kill("SIGTERM");
      await exited();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Serves html at / from a fresh port: an origin of its own. */
export async function servePage(html) {
  const srv = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(html);
  });
  await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
  const origin = `http://127.0.0.1:${srv.address().port}`;
  return { origin, close: () => new Promise((ok) => srv.close(ok)) };
}

/** Launches headless Chromium (deploy/local/chromium.sh installs it). */
export async function launchBrowser() {
  const executablePath = execFileSync(join(here, "..", "..", "deploy", "local", "chromium.sh"), ["path"]).toString().trim();
  return puppeteer.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** Runs fn(page); on a failure saves page's screenshot as <name>.png and rethrows. */
export async function withPage(browser, name, fn) {
  const page = await browser.newPage();
  try {
    return await fn(page);
  } catch (err) {
    mkdirSync(artifacts, { recursive: true });
    const file = join(artifacts, `${name.replace(/[^a-z0-9-]+/gi, "_")}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    err.message += ` (screenshot: ${file})`;
    throw err;
  } finally {
    await page.close().catch(() => {});
  }
}

const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon" };

/**
 * Serves the files of dir (the built app, web/dist) from a fresh port: an
 * origin of its own; / is index.html. headers are added to every answer
 * (e.g. the Content-Security-Policy the node serves the app with).
 */
export async function serveDir(dir, headers = {}) {
  const { readFile } = await import("node:fs/promises");
  const { extname, normalize } = await import("node:path");
  const srv = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
    const file = join(dir, path === "/" ? "index.html" : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { ...headers, "Content-Type": types[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
  const origin = `http://127.0.0.1:${srv.address().port}`;
  return { origin, close: () => new Promise((ok) => srv.close(ok)) };
}

/**
 * Runs fn(open), where open() gives a page in a browser context of its own
 * (its own localStorage: another browser); on a failure saves a screenshot of
 * every page opened as <name>-<n>.png and rethrows. The contexts are closed after.
 */
export async function withContexts(browser, name, fn) {
  const contexts = [];
  const pages = [];
  const open = async () => {
    const ctx = await browser.createBrowserContext();
    contexts.push(ctx);
    const page = await ctx.newPage();
    pages.push(page);
    return page;
  };
  try {
    return await fn(open, pages);
  } catch (err) {
    mkdirSync(artifacts, { recursive: true });
    const files = [];
    for (const [i, page] of pages.entries()) {
      if (page.isClosed()) continue;
      const file = join(artifacts, `${name.replace(/[^a-z0-9-]+/gi, "_")}-${i + 1}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      files.push(file);
    }
    err.message += ` (screenshots: ${files.join(", ")})`;
    throw err;
  } finally {
    for (const ctx of contexts) await ctx.close().catch(() => {});
  }
}
