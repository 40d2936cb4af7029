// Plausible's own trackers in real Chromium, sending to the Tallymark
// collector: a site that moves from Plausible keeps its tracker and changes
// only the endpoint. Prints a JSON report; tests/tests/plausible.rs asserts it
// and the rows the collector stored.
//
// usage: node plausible.mjs COLLECTOR_BASE
//
// The trackers are the npm packages as published (tests/package.json):
// @plausible-analytics/tracker (Plausible's script as an ES module, with its
// engagement pings) and plausible-tracker 0.3 (XMLHttpRequest, props as a
// JSON string), loaded as plain ES modules from node_modules.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { humanContext, launchHuman, watchErrors } from './chromium.mjs';

const [collector] = process.argv.slice(2);
const api = `${collector}/api/event`;
const modules = path.resolve(import.meta.dirname, '../node_modules');

function html(body) {
  return `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>${body}</body></html>`;
}

const pages = new Map();
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname.startsWith('/node_modules/')) {
    // ES modules straight from the packages; plausible-tracker's build
    // imports './lib/tracker' without an extension, as bundlers allow.
    let file = path.join(modules, url.pathname.slice('/node_modules/'.length));
    if (!fs.existsSync(file) && fs.existsSync(`${file}.js`)) file = `${file}.js`;
    if (file.startsWith(modules) && fs.existsSync(file) && fs.statSync(file).isFile()) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(fs.readFileSync(file));
    }
    res.writeHead(404);
    return res.end();
  }
  const page = pages.get(url.pathname.split('/').slice(0, 2).join('/'));
  res.writeHead(page ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
  res.end(page || html(''));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const origin = `http://localhost:${port}`;
const elsewhere = `http://127.0.0.1:${port}/elsewhere`;

pages.set('/elsewhere', html('elsewhere'));
pages.set('/new', html(`<a id="out" href="${elsewhere}">out</a>
<script type="module">
  import { init, track } from '/node_modules/@plausible-analytics/tracker/plausible.js';
  init({ domain: 'localhost', endpoint: '${api}', captureOnLocalhost: true, outboundLinks: true });
  window.plTrack = track;
</script>`));
pages.set('/old', html(`<script type="module">
  import Plausible from '/node_modules/plausible-tracker/build/module/index.js';
  const plausible = Plausible({ domain: 'localhost', apiHost: '${collector}', trackLocalhost: true });
  plausible.enableAutoPageviews();
  window.plOld = plausible;
</script>`));

const browser = await launchHuman();
const report = { errors: [], pageErrors: [], sent: [] };
try {
  const context = await humanContext(browser);
  // Plausible's tracker skips browsers driven by automation
  // (navigator.webdriver) unless the page sets this flag; a person's
  // browser has no webdriver.
  await context.addInitScript(() => { window.__plausible = true; });
  const page = await context.newPage();
  watchErrors(page, report);
  // Every request to the event endpoint, with how the collector answered it.
  page.on('requestfinished', async (r) => {
    if (!r.url().startsWith(api)) return;
    const response = await r.response();
    const body = JSON.parse(r.postData() || '{}');
    report.sent.push({
      n: body.n,
      status: response ? response.status() : 0,
      dropped: response ? response.headers()['x-tallymark-dropped'] || null : null,
    });
  });
  const count = (n) => report.sent.filter((s) => s.n === n).length;
  const until = async (done, ms = 10000) => {
    const end = Date.now() + ms;
    while (!done() && Date.now() < end) await page.waitForTimeout(25);
  };

  // @plausible-analytics/tracker: a load, two SPA navigations (each sends the
  // previous page's engagement ping first), a custom event with props and
  // revenue, an outbound click.
  await page.goto(`${origin}/new`);
  await until(() => count('pageview') === 1);
  await page.evaluate(() => history.pushState({}, '', '/new/a'));
  await until(() => count('pageview') === 2);
  await page.evaluate(() => history.pushState({}, '', '/new/b'));
  await until(() => count('pageview') === 3 && count('engagement') >= 2);
  await page.evaluate(() => window.plTrack('Signup', { props: { plan: 'pro', seats: 3 }, revenue: { amount: 19.99, currency: 'EUR' } }));
  await until(() => count('Signup') === 1);
  await page.click('#out');
  await page.waitForURL(elsewhere);
  await page.waitForTimeout(500);

  // plausible-tracker 0.3: a load, one SPA navigation, a custom event.
  await page.goto(`${origin}/old`);
  await until(() => count('pageview') === 4);
  await page.evaluate(() => history.pushState({}, '', '/old/x'));
  await until(() => count('pageview') === 5);
  await page.evaluate(() => window.plOld.trackEvent('Download', { props: { format: 'pdf' } }));
  await until(() => count('Download') === 1);
  await page.waitForTimeout(300);
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(report));
