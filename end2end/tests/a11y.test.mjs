// Pages everyone can use: axe-core (WCAG 2 A and AA rules) finds nothing on any page of the demo,
// and every control is reachable by keyboard with a visible focus.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, hydrated, violations } from './helpers.mjs';

let app;
before(async () => { app = await startApp([]); });
after(async () => { await app?.stop(); });

test('every page of the demo passes axe-core with no violation', async () => {
  const { page, url } = app;
  const runs = await (await fetch(`${url}/api/v1/runs?limit=1`)).json();
  const run = runs[0].run_id;
  const experiment = runs[0].experiment_id;
  const pages = ['/', '/runs', `/runs/${run}`, '/teams', '/map', '/regions', '/plan', '/files', '/data', '/upload',
    '/pareto?project=bert-sst2-sweep', `/experiments/${experiment}`, `/map?run_id=${run}`, `/plan?run_id=${run}`];
  const found = [];
  for (const path of pages) {
    await page.goto(url + path);
    await hydrated(page);
    for (const v of await violations(page)) found.push(`${path}: ${v}`);
  }
  assert.deepEqual(found, []);
});

test('the keyboard reaches every control of a page, each with a visible focus ring', async () => {
  const { page, url } = app;
  await page.goto(`${url}/runs`);
  await hydrated(page);
  const controls = await page.evaluate(() => document.querySelectorAll('a[href], button, input, select, [tabindex]:not([tabindex="-1"])').length);
  const seen = new Set();
  for (let i = 0; i < controls + 5; i++) {
    await page.keyboard.press('Tab');
    const focus = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const style = getComputedStyle(el);
      return { key: el.outerHTML.slice(0, 80), outline: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
    if (!focus) continue;
    assert.ok(focus.outline !== 'none' && focus.width >= 2, `a visible focus on ${focus.key}: ${JSON.stringify(focus)}`);
    seen.add(focus.key);
  }
  assert.ok(seen.size >= controls - 1, `${seen.size} of ${controls} controls reached by Tab`);
});
