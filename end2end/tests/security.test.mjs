// HTML, JS and SVG payloads in every text field of a CSV render as inert text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApp, hydrated, tempDir } from './helpers.mjs';

const PAYLOADS = [
  '<script>window.__pwned=1</script>',
  '<img src=x onerror="window.__pwned=2">',
  '<svg onload="window.__pwned=3"></svg>',
  '"><iframe src="javascript:window.__pwned=4">',
];
const HEADER = 'timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode,on_cloud,pue,my_tag';

function csvField(s) {
  return '"' + s.replace(/"/g, '""') + '"';
}

let server, page, dialogs = 0;

before(async () => {
  const dir = tempDir('carbon-dash-xss-');
  const team = join(dir, PAYLOADS[1].replace(/[\/\\]/g, '_'));
  mkdirSync(team, { recursive: true });
  const rows = PAYLOADS.map((p, i) => {
    const f = csvField(p);
    return [`2026-10-0${i + 1}T10:00:00`, f, `run-${i}-${encodeURIComponent(p).slice(0, 20)}`, f, 3600, 0.05, 1e-5, 40, 200, 10,
      0.04, 0.2, 0.01, 0.25, f, 'FRA', f, '', '', f, '3.11', '2.8.3', 8, f, 1, f, 2.35, 48.85, 64, 'machine', 'N', 1.0, f].join(',');
  });
  writeFileSync(join(team, 'emissions.csv'), [HEADER, ...rows].join('\n') + '\n');
  server = await startApp([dir]);
  page = server.page;
  page.on('dialog', async (d) => { dialogs += 1; await d.dismiss(); });
});

after(() => server?.stop());

test('payloads in CSV text fields stay text on every page', async () => {
  const runs = await (await fetch(server.url + '/api/v1/runs')).json();
  assert.equal(runs.length, PAYLOADS.length);
  const pages = ['/', '/runs', '/files', '/teams', '/map', `/runs/${encodeURIComponent(runs[0].run_id)}`,
    `/experiments/${encodeURIComponent(runs[0].experiment_id)}`];
  for (const path of pages) {
    await page.goto(server.url + path);
    await hydrated(page);
    await page.mouse.move(300, 300);
    assert.equal(await page.evaluate(() => window.__pwned), undefined, `${path} ran a payload`);
    assert.equal(await page.locator('main script, main iframe, main img[src="x"]').count(), 0, `${path} holds injected elements`);
  }
  await page.goto(server.url + '/runs');
  await hydrated(page);
  assert.ok((await page.locator('table.runs-table').textContent()).includes('<script>window.__pwned=1</script>'), 'shown as text');
  assert.equal(dialogs, 0);
});

test('pages hydrate under their Content-Security-Policy and break none of it', async () => {
  const violations = [];
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text()); });
  await page.exposeFunction('__cspViolation', (v) => violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation(`${e.violatedDirective} ${e.blockedURI}`));
  });
  for (const path of ['/', '/runs', '/map', '/teams', '/upload', '/plan', '/nope']) {
    const res = await page.goto(server.url + path);
    const policy = res.headers()['content-security-policy'] || '';
    assert.match(policy, /script-src 'self' 'nonce-[^']+' 'wasm-unsafe-eval'/, `${path}: ${policy}`);
    assert.equal(res.headers()['x-frame-options'], 'DENY');
    await hydrated(page);
  }
  assert.deepEqual(violations, [], 'no CSP violation on any page');
});
