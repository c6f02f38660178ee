// Starts the real server on a free port and a fresh headless Chromium for each test file.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.CARBON_DASH_BIN ?? '../target/debug/carbon-dash';
// Servers started by the tests keep their parse cache in a temporary folder, not in ~/.cache.
process.env.CARBON_DASH_CACHE_DIR ??= tempDir('carbon-dash-cache-');
const SITE = process.env.CARBON_DASH_SITE ?? '../site';

export async function startServer(args = [], { addr = '127.0.0.1:0' } = {}) {
  const proc = spawn(BIN, ['serve', ...args, '--addr', addr, '--site-root', SITE], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // With a logs folder, the server watches it from a thread of its own: wait for that too, so a
  // test's first change to the folder is seen.
  const watched = args.length > 0 && !args[0].startsWith('--');
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30000);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/Serving on (http:\/\/\S+)/);
      if (m && (!watched || /watching |not watching /.test(out))) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  return { url, stop: () => proc.kill() };
}

/// A fresh temporary folder, removed when the test file's process exits (after its browser and
/// server have stopped).
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startBrowser() {
  const context = await chromium.launchPersistentContext(tempDir('carbon-dash-e2e-'), {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return context;
}

/// The server with these arguments and a browser page: `{ url, page, stop }`.
export async function startApp(args = []) {
  const server = await startServer(args);
  const browser = await startBrowser();
  const page = await browser.newPage();
  const stop = async () => {
    await browser.close();
    server.stop();
  };
  return { url: server.url, page, stop };
}

/// Pages axe-core has checked in this test file (each address once).
const checked = new Set();

/// Waits until the wasm bundle has hydrated the page (the app sets this attribute in an effect),
/// then checks it with axe-core the first time its address is seen: every page the end-to-end
/// tests visit passes with no violation.
export async function hydrated(page) {
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30000 });
  const url = page.url();
  if (checked.has(url)) return;
  checked.add(url);
  const found = await violations(page);
  if (found.length) throw new Error(`axe-core on ${url}:\n${found.join('\n')}`);
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/// The violations axe-core (WCAG 2 A and AA rules) finds on the page as it is now (injected
/// through the browser's debugger, which the page's Content-Security-Policy does not govern).
export async function violations(page) {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const r = await window.axe.run(document);
    return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.length}× ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  });
}
