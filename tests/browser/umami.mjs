// Umami's own tracker (the `umami` package's src/tracker/index.js, fetched
// by `cargo xtask test` into target/test-clients/) in real Chromium, sending
// to the Tallymark collector's /api/send: a site moving from Umami keeps its
// tag and points data-host-url at the collector. Prints a JSON report;
// tests/tests/umami.rs asserts it and the rows the collector stored.
//
// usage: node umami.mjs COLLECTOR_BASE TRACKER_FILE
import http from 'node:http';
import fs from 'node:fs';
import { humanContext, launchHuman, watchErrors } from './chromium.mjs';

const [collector, trackerFile] = process.argv.slice(2);
const api = `${collector}/api/send`;
const tracker = fs.readFileSync(trackerFile);

function html(body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>umami test</title><link rel="icon" href="data:,">`
    + `<script defer src="/umami.js" data-website-id="4fb7fa4c-5b46-438d-94b3-3a8fb9bc2e8b" data-host-url="${collector}"></script>`
    + `</head><body>${body}</body></html>`;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/umami.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' });
    return res.end(tracker);
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(html('<button id="buy" data-umami-event="Buy" data-umami-event-plan="pro">buy</button>'));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://localhost:${server.address().port}`;

const browser = await launchHuman();
const report = { errors: [], pageErrors: [], sent: [] };
try {
  const context = await humanContext(browser);
  const page = await context.newPage();
  watchErrors(page, report);
  page.on('requestfinished', async (r) => {
    if (!r.url().startsWith(api) || r.method() !== 'POST') return;
    const response = await r.response();
    const body = JSON.parse(r.postData() || '{}');
    report.sent.push({
      type: body.type,
      name: body.payload && body.payload.name,
      status: response ? response.status() : 0,
      dropped: response ? response.headers()['x-tallymark-dropped'] || null : null,
    });
  });
  const until = async (done, ms = 10000) => {
    const end = Date.now() + ms;
    while (!done() && Date.now() < end) await page.waitForTimeout(25);
  };
  const views = () => report.sent.filter((s) => s.type === 'event' && !s.name).length;

  // A load, an SPA navigation, a custom event with data and revenue, a
  // tagged button, and identify (dropped: nobody is identified).
  await page.goto(`${origin}/u`);
  await until(() => views() === 1);
  await page.evaluate(() => history.pushState({}, '', '/u/next'));
  await until(() => views() === 2);
  await page.evaluate(() => window.umami.track('Signup', { plan: 'pro', revenue: 19.99, currency: 'EUR' }));
  await until(() => report.sent.some((s) => s.name === 'Signup'));
  await page.click('#buy');
  await until(() => report.sent.some((s) => s.name === 'Buy'));
  await page.evaluate(() => window.umami.identify({ email: 'someone@example.com' }));
  await until(() => report.sent.some((s) => s.type === 'identify'));
  await page.waitForTimeout(300);
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(report));
