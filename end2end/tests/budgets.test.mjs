// A team's budget on its page: spent, projected, the day it runs out, and the burn-down chart,
// from budgets.toml beside the logs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApp, hydrated, tempDir } from './helpers.mjs';

const dir = tempDir('carbon-dash-budgets-');
mkdirSync(join(dir, 'nlp', 'bert'), { recursive: true });
// Four runs a day over the last three days (UTC, as the server's clock), 1 kg CO₂e each (as reported).
const rows = ['timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code'];
const now = Date.now();
for (let i = 0; i < 12; i += 1) {
  const end = new Date(now - i * 6 * 3600 * 1000).toISOString().slice(0, 19);
  rows.push(`${end},bert,00000000-0000-4000-8000-${String(i).padStart(12, '0')},3600,1,20,FRA`);
}
writeFileSync(join(dir, 'nlp', 'bert', 'emissions.csv'), `${rows.join('\n')}\n`);
writeFileSync(join(dir, 'budgets.toml'), '[[budget]]\nteam = "nlp"\nco2_kg = 3\nthresholds = [50, 100]\n');

let app;
before(async () => { app = await startApp([dir]); });
after(async () => { await app?.stop(); });

test("the team page shows where the team's budget stands, with its burn-down", async () => {
  const { page, url } = app;
  await page.goto(`${url}/teams/nlp`);
  await hydrated(page);
  const budget = page.locator('section.budget').first();
  assert.match(await budget.locator('h3').textContent(), /team nlp: 3 kg CO₂e per month/);
  const text = await budget.textContent();
  assert.match(text, /Spent/);
  assert.match(text, /Projected/);
  assert.match(text, /Runs out/);
  assert.equal(await budget.locator('svg').count(), 1, 'the burn-down chart');
  assert.match(await budget.locator('figcaption, .chart-alt, p').first().textContent(), /Burn-down|burn-down|Recomputed/);
  const api = await (await fetch(`${url}/api/v1/budgets`)).json();
  assert.equal(api.budgets[0].budget.scope.name, 'nlp');
  assert.ok(api.budgets[0].spent.value > 0, JSON.stringify(api.budgets[0].spent));
  const out = process.env.CARBON_DASH_SCREENSHOTS;
  if (out) {
    mkdirSync(out, { recursive: true });
    await budget.screenshot({ path: `${out}/team-budget.png` });
  }
});
