// Browser upload: picked and dropped files go up one by one with progress and a result each, the
// pages then show the private session, "save to logs" writes the files as given.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApp, startBrowser, startServer, hydrated, tempDir } from './helpers.mjs';

const HEADER = 'timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n';
const csv = (project, run) => HEADER + `2026-10-01T10:00:00,${project},${run},3600,0.01,0.2,FRA\n`;

let server, page, logs;

before(async () => {
  logs = tempDir('carbon-dash-upload-');
  writeFileSync(join(logs, 'emissions.csv'), csv('server-logs', 'logs-run'));
  server = await startApp([logs, '--max-file-mb', '1']);
  page = server.page;
});

after(() => server?.stop());

test('picked and dropped files are uploaded with a result each, shown privately, then saved', async () => {
  await page.goto(server.url + '/upload');
  await hydrated(page);
  const mine = csv('uploaded-project', 'up-1');
  await page.setInputFiles('input[type=file]', [
    { name: 'emissions.csv', mimeType: 'text/csv', buffer: Buffer.from(mine) },
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') },
    { name: 'huge.csv', mimeType: 'text/csv', buffer: Buffer.alloc(1_200_000, 'a') },
  ]);
  await page.waitForSelector('#sending li:nth-child(3)');
  // Every row ends with a result; the oversized file is refused without being sent.
  await page.waitForFunction(() => [...document.querySelectorAll('#sending li')].every((li) => !li.classList.contains('sending-now')), null, { timeout: 15000 });
  const rows = await page.locator('#sending li').allTextContents();
  assert.match(rows[0], /emissions\.csv.*1 run — 1 row read/);
  assert.match(rows[1], /notes\.txt.*not a CSV file/);
  assert.match(rows[2], /huge\.csv.*larger than the 1 MB limit.*not sent/);
  assert.equal(await page.locator('#sending li progress').count(), 3);
  // The session table and the header banner appear without a reload.
  await page.waitForSelector('#session table.upload-results');
  await page.waitForSelector('#session-banner');

  // Drag and drop adds to the same session.
  const drop = await page.evaluateHandle((text) => {
    const dt = new DataTransfer();
    dt.items.add(new File([text], 'dropped.csv', { type: 'text/csv' }));
    return dt;
  }, csv('dropped-project', 'drop-1'));
  await page.dispatchEvent('#upload-form', 'drop', { dataTransfer: drop });
  await page.waitForFunction(() => document.querySelector('#sending li:nth-child(4)')?.classList.contains('ok'), null, { timeout: 15000 });
  await page.waitForFunction(() => document.querySelector('#session')?.textContent.includes('dropped.csv'));

  // A file name carrying markup stays text, on the page and in the session.
  const evil = '<img src=x onerror="window.__xss=1">.csv';
  await page.setInputFiles('input[type=file]', [{ name: evil, mimeType: 'text/csv', buffer: Buffer.from(csv('p', 'x-1')) }]);
  await page.waitForFunction(() => document.querySelector('#sending li:nth-child(5)')?.classList.contains('ok'), null, { timeout: 15000 });
  assert.ok((await page.locator('#sending li:nth-child(5) .name').textContent()).includes('<img'), 'shown as text');
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'nothing ran');
  assert.equal(await page.locator('#sending img, #session img').count(), 0);
  if (process.env.SCREENSHOTS) await page.screenshot({ path: join(process.env.SCREENSHOTS, 'upload.png'), fullPage: true });

  // The pages show the upload only.
  await page.goto(server.url + '/runs');
  await hydrated(page);
  const runs = await page.locator('main').textContent();
  assert.ok(runs.includes('uploaded-project') && runs.includes('dropped-project'), runs);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.ok(!runs.includes('server-logs'));

  // Save to logs: under uploads/, beside the existing emissions.csv, byte for byte.
  await page.goto(server.url + '/upload');
  await hydrated(page);
  await page.click('button:has-text("Save 3 files to")');
  await page.waitForSelector('text=uploads/emissions.csv');
  assert.deepEqual(readdirSync(join(logs, 'uploads')).sort(), ['_img_src_x_onerror__22window.__xss_1_22_.csv', 'dropped.csv', 'emissions.csv']);
  assert.equal(readFileSync(join(logs, 'uploads', 'emissions.csv'), 'utf8'), mine);
  assert.equal(readFileSync(join(logs, 'emissions.csv'), 'utf8'), csv('server-logs', 'logs-run'));

  // Leaving the session: the server's logs again, now with the saved files (the folder is watched).
  await page.click('text=Show the server\'s logs again');
  await hydrated(page);
  await page.goto(server.url + '/runs');
  await page.waitForFunction(() => document.querySelector('main')?.textContent.includes('uploaded-project'), null, { timeout: 5000 });
  const after = await page.locator('main').textContent();
  assert.ok(after.includes('server-logs'), after);
  assert.equal(await page.locator('#session-banner').count(), 0);
});

test('a shared session link asks before it opens, then shows the shared files', async () => {
  const form = new FormData();
  form.append('files', new Blob([csv('shared-project', 'shared-run')]), 'shared.csv');
  const res = await fetch(server.url + '/upload', { method: 'POST', body: form, headers: { Accept: 'application/json' } });
  const { session } = await res.json();
  // In another browser context: nothing is replaced before the visitor says so.
  const other = await startBrowser();
  const visitor = await other.newPage();
  await visitor.goto(`${server.url}/sessions/${session}`);
  assert.match(await visitor.locator('h1').textContent(), /Open an upload session\?/);
  assert.equal((await other.cookies()).length, 0, 'no cookie until confirmed');
  await visitor.click('#open-session');
  await visitor.waitForURL((u) => !u.pathname.startsWith('/sessions/'));
  await hydrated(visitor);
  assert.match(await visitor.locator('body').innerText(), /Your upload/);
  await visitor.goto(server.url + '/runs');
  assert.match(await visitor.locator('table.runs-table').innerText(), /shared-project/);
  await other.close();
});

test('a read-only server has upload off, and previews only with --allow-upload-preview', async () => {
  const ro = await startServer([logs, '--read-only']);
  try {
    await page.goto(ro.url + '/upload');
    assert.match(await page.locator('#upload-off').textContent(), /read-only: upload is off/);
    const res = await fetch(ro.url + '/upload', { method: 'POST', body: new FormData() });
    assert.equal(res.status, 403);
  } finally {
    ro.stop();
  }
  const preview = await startServer([logs, '--read-only', '--allow-upload-preview']);
  try {
    await page.goto(preview.url + '/upload');
    await hydrated(page);
    await page.setInputFiles('input[type=file]', [{ name: 'p.csv', mimeType: 'text/csv', buffer: Buffer.from(csv('preview-project', 'p-1')) }]);
    await page.waitForSelector('#session table.upload-results');
    assert.equal(await page.locator('button:has-text("Save")').count(), 0, 'no saving on a read-only server');
  } finally {
    preview.stop();
  }
});
