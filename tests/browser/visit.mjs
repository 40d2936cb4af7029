// Opens one URL, waits for the beacon's response, and reports what the page
// left behind: the beacon status, cookies, storage entries and console errors.
// usage: node visit.mjs URL
import { humanContext, launch } from './chromium.mjs';

const [url] = process.argv.slice(2);
const browser = await launch();
try {
  const context = await humanContext(browser);
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  const beacon = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/event', { timeout: 20000 });
  await page.goto(url);
  const response = await beacon;
  const storage = await page.evaluate(async () => ({
    localStorage: localStorage.length,
    sessionStorage: sessionStorage.length,
    indexedDB: (await indexedDB.databases()).length,
    cookie: document.cookie,
  }));
  console.log(JSON.stringify({
    beaconStatus: response.status(),
    beaconMethod: response.request().method(),
    dropped: (await response.allHeaders())['x-tallymark-dropped'] ?? null,
    cookies: await context.cookies(),
    storage,
    errors,
  }));
} finally {
  await browser.close();
}
