// Saves full-page screenshots of a running carbon-dash: node screenshot.mjs BASE_URL OUT_DIR [PATH...]
import { mkdirSync } from 'node:fs';
import { startBrowser, hydrated } from './tests/helpers.mjs';

const [base, out, ...paths] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const browser = await startBrowser();
const page = await browser.newPage();
for (const path of paths.length ? paths : ['/', '/runs', '/files']) {
  await page.goto(base + path);
  await hydrated(page);
  const name = path.replace(/[^a-z0-9]+/gi, '_').replace(/^_|_$/g, '') || 'overview';
  await page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
  console.log(`${out}/${name}.png`);
}
await browser.close();
