// Behind a reverse proxy: served under --base-path, every link, asset, server function and the
// event stream stay under it, and the app hydrates and navigates on the client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, hydrated } from './helpers.mjs';

let server, page;
const outside = [];

before(async () => {
  server = await startApp(['--base-path', '/carbon/']);
  page = server.page;
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.origin === new URL(server.url).origin && !u.pathname.startsWith('/carbon')) outside.push(u.pathname);
  });
});

after(() => server?.stop());

test('the app hydrates under the base path and navigates without leaving it', async () => {
  assert.ok(server.url.endsWith('/carbon'), server.url);
  await page.goto(server.url);
  await hydrated(page);
  await page.evaluate(() => { window.__noReload = true; });
  await page.click('header nav a:has-text("Runs")');
  await page.waitForURL(/\/carbon\/runs$/);
  await page.waitForSelector('#runs-count');
  await page.click('th a[data-sort="energy"]');
  await page.waitForURL(/\/carbon\/runs\?sort=energy/);
  await page.waitForFunction(() => document.querySelector('th[aria-sort="descending"] a[data-sort="energy"]'));
  await page.click('table tbody tr:first-child td a');
  await page.waitForURL(/\/carbon\/runs\/[^/?]+$/);
  await page.waitForSelector('table.checkpoints');
  assert.equal(await page.evaluate(() => window.__noReload), true, 'client-side navigation only');
  await page.goto(server.url + '/upload');
  await hydrated(page);
  assert.equal(await page.getAttribute('#upload-form', 'action'), '/carbon/upload');
  assert.deepEqual(await page.locator('header nav a[aria-current="page"]').allTextContents(), ['Upload'], 'one page marked current');
  assert.deepEqual(outside, [], 'no request left the base path');
});
