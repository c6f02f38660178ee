// Behind a sign-in proxy: a member of team alpha sees alpha's runs only, on the overview, the
// runs and the teams pages; without the proxy's headers, nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, startBrowser, hydrated, tempDir } from './helpers.mjs';

const dir = tempDir('carbon-dash-auth-');
const log = (project, run, kwh) => 'timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n'
  + `2026-10-01T10:00:00,${project},${run},3600,${(kwh * 0.05).toFixed(6)},${kwh},FRA\n`;
for (const [team, project, run, kwh] of [['alpha', 'alpha-vision', 'a1000000-0000-4000-8000-0000000000a1', 2],
  ['beta', 'beta-secret-project', 'b2000000-0000-4000-8000-0000000000b2', 5]]) {
  mkdirSync(join(dir, team, project), { recursive: true });
  writeFileSync(join(dir, team, project, 'emissions.csv'), log(project, run, kwh));
}

let server;
let browser;
before(async () => {
  // Members, read tokens and sessions in a store of the test's own (not carbon-dash.db here).
  const db = join(tempDir('carbon-dash-auth-db-'), 'people.db');
  server = await startServer([dir, '--auth', 'proxy', '--auth-proxy-trusted', '127.0.0.1/32', '--db', db]);
  browser = await startBrowser();
});
after(async () => { await browser?.close(); server?.stop(); });

test('a member of team alpha sees alpha only; nobody without the proxy sees anything', async () => {
  // What the sign-in proxy adds to every request of a member of team alpha.
  const page = await browser.newPage();
  await page.setExtraHTTPHeaders({ 'X-Forwarded-Email': 'ada@example.org', 'X-Forwarded-Groups': 'alpha' });
  await page.goto(`${server.url}/`);
  await hydrated(page);
  const main = await page.locator('main').textContent();
  assert.match(main, /Energy\s*2 kWh/, "alpha's 2 kWh, not beta's 5 added");
  assert.doesNotMatch(main, /beta/);
  await page.goto(`${server.url}/teams`);
  await hydrated(page);
  const teams = await page.locator('main').textContent();
  assert.match(teams, /alpha/);
  assert.doesNotMatch(teams, /beta/);
  await page.goto(`${server.url}/runs`);
  await hydrated(page);
  assert.equal(await page.locator('table.runs-table tbody tr').count(), 1);
  const out = process.env.CARBON_DASH_SCREENSHOTS;
  if (out) {
    mkdirSync(out, { recursive: true });
    await page.goto(`${server.url}/`);
    await hydrated(page);
    await page.screenshot({ path: `${out}/team-scoped-overview.png`, fullPage: true });
  }
  const anonymous = await fetch(`${server.url}/api/v1/runs`);
  assert.equal(anonymous.status, 401);
  await page.close();
});
