// Drives the Tallymark SDK through one scenario in real Chromium and prints
// a JSON report; tests/tests/sdk*.rs assert the report and the rows the
// collector stored.
//
// usage: node sdk.mjs SCENARIO COLLECTOR_BASE [APP_DIST_DIR]
//
// Test pages are served by a small static server on another port (another
// origin, as a real site is): the script tag points at the collector's
// /js/tallymark.js. Headless Chromium would be dropped as a bot, so pages run
// in `humanContext`.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { humanContext, launchHuman } from './chromium.mjs';

const [scenario, collector, appDir] = process.argv.slice(2);
const api = `${collector}/api/event`;

function tag(attrs = '') {
  return `<script defer src="${collector}/js/tallymark.js" data-site="localhost" data-allow-localhost ${attrs}></script>`;
}
function html(head, body = '') {
  return `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">${head}</head><body>${body}</body></html>`;
}

// path -> html; anything else under appDir is served as a file.
const pages = new Map([['/elsewhere', html('<title>elsewhere</title>')]]);
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const page = pages.get(url.pathname);
  if (page) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(page);
  }
  if (appDir) {
    const file = path.join(appDir, url.pathname === '/' ? 'index.html' : url.pathname);
    if (file.startsWith(appDir) && fs.existsSync(file) && fs.statSync(file).isFile()) {
      const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
      res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
      return res.end(fs.readFileSync(file));
    }
  }
  // Other routes: the 404 page when the scenario has one, else the SPA.
  const fallback = pages.has('/404') ? [404, pages.get('/404')]
    : pages.has('/spa') ? [200, pages.get('/spa')] : [404, html('')];
  res.writeHead(fallback[0], { 'content-type': 'text/html; charset=utf-8' });
  res.end(fallback[1]);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const origin = `http://localhost:${port}`;
const elsewhere = `http://127.0.0.1:${port}/elsewhere`;

const browser = await launchHuman({ bfcache: scenario === 'bfcache' });
// errors: console errors and warnings, except Chromium's own network log
// lines ("Failed to load resource: …", e.g. the 404 page itself), which are
// kept apart in networkErrors.
const report = { scenario, errors: [], networkErrors: [], pageErrors: [], beacons: [], types: [], engaged: [] };
if (process.env.SDK_DEBUG) process.on('exit', () => console.error(JSON.stringify(report)));
try {
  const context = await humanContext(browser);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    (m.text().startsWith('Failed to load resource:') ? report.networkErrors : report.errors).push(m.text());
  });
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));
  // Every request to the collector's event endpoint, as the browser made it.
  // Engagement (sent when a page is hidden or left, and before an app's next
  // view) is kept apart: the counts below are views and events.
  let finished = 0;
  const engagement = (r) => (r.postData() || '').includes('"kind":"engagement"');
  page.on('request', (r) => {
    if (!r.url().startsWith(api)) return;
    if (engagement(r)) return report.engaged.push(r.postData());
    report.beacons.push(r.postData());
    report.types.push(r.resourceType());
  });
  page.on('requestfinished', (r) => { if (r.url().startsWith(api) && !engagement(r)) finished += 1; });
  const beacons = async (n, ms = 10000) => {
    const end = Date.now() + ms;
    while (finished < n && Date.now() < end) await page.waitForTimeout(25);
    return finished;
  };
  const settle = () => page.waitForTimeout(400);

  switch (scenario) {
    // One load, a reload, three SPA navigations, a replaceState of the same
    // URL, a custom event with props and revenue, an outbound click.
    case 'script': {
      pages.set('/spa', html(tag('data-outbound'),
        `<a id="out" href="${elsewhere}">out</a><a id="in" href="/spa/inside">in</a>`));
      await page.goto(`${origin}/spa`);
      await beacons(1);
      await page.reload();
      await beacons(2);
      for (const n of [1, 2, 3]) {
        await page.evaluate((n) => history.pushState({}, '', `/spa/page${n}`), n);
        await beacons(2 + n);
      }
      await page.evaluate(() => history.replaceState({ x: 1 }, '', location.href));
      await page.evaluate(() => history.replaceState({}, '', '/spa/page3#top'));
      // The same path again: an app normalising its URL after reading it.
      await page.evaluate(() => history.replaceState({}, '', '/spa/page3/?utm_source=x'));
      await settle();
      await page.evaluate(() => window.tallymark.track('Signup', { plan: 'pro "annual"', seats: 3, trial: true, none: null },
        { revenue: { amount: 19.99, currency: 'EUR' } }));
      await beacons(6);
      // Not an interaction: a visit with it alone would still bounce.
      await page.evaluate(() => window.tallymark('Scrolled', { depth: 50 }, { interactive: false }));
      await beacons(7);
      // Dropped in the browser by the core limits: a nested prop, a bad currency.
      await page.evaluate(() => {
        window.tallymark('Nested', { a: { b: 1 } });
        window.tallymark('BadRevenue', {}, { revenue: { amount: 1, currency: 'EURO' } });
      });
      await settle();
      report.storage = await page.evaluate(async () => ({
        localStorage: localStorage.length,
        sessionStorage: sessionStorage.length,
        indexedDB: (await indexedDB.databases()).length,
        cookie: document.cookie,
      }));
      await page.click('#in'); // same host: no outbound event, a real load
      await page.waitForURL(`${origin}/spa/inside`);
      await beacons(8);
      await page.click('#out');
      await page.waitForURL(elsewhere);
      await beacons(9);
      report.cookies = await context.cookies();
      break;
    }
    // A page that, while being left, counts one more page view (pushState
    // in pagehide) and one event; both must arrive.
    case 'pagehide': {
      pages.set('/leave', html(tag(), `<script>
        addEventListener('pagehide', function () {
          history.pushState({}, '', '/leave/bye');
          window.tallymark('Leave', { how: 'pagehide' });
        });
      </script>`));
      await page.goto(`${origin}/leave`);
      await beacons(1);
      await page.goto(elsewhere);
      await page.waitForTimeout(1000);
      break;
    }
    // No sendBeacon at all: the fetch(keepalive) fallback delivers.
    case 'fallback': {
      await page.addInitScript(() => { delete Navigator.prototype.sendBeacon; });
      pages.set('/fallback', html(tag()));
      await page.goto(`${origin}/fallback`);
      await beacons(1);
      await page.evaluate(() => window.tallymark.track('Fallback', { ok: true }));
      await beacons(2);
      report.sendBeacon = await page.evaluate(() => typeof navigator.sendBeacon);
      break;
    }
    // sendBeacon present but refusing (returns false, as when the browser's
    // beacon quota is used up): the fetch(keepalive) fallback delivers, to
    // the endpoint data-api names (the collector under another host name).
    case 'refused': {
      await page.addInitScript(() => {
        Navigator.prototype.sendBeacon = function () { window.__refused = (window.__refused || 0) + 1; return false; };
      });
      const altApi = api.replace('//localhost:', '//127.0.0.1:');
      report.altTypes = [];
      let altFinished = 0;
      page.on('request', (r) => { if (r.url().startsWith(altApi)) report.altTypes.push(r.resourceType()); });
      page.on('requestfinished', (r) => { if (r.url().startsWith(altApi)) altFinished += 1; });
      pages.set('/refused', html(tag(`data-api="${altApi}"`)));
      await page.goto(`${origin}/refused`);
      const end = Date.now() + 10000;
      while (altFinished < 1 && Date.now() < end) await page.waitForTimeout(25);
      await settle();
      report.refused = await page.evaluate(() => window.__refused);
      break;
    }
    // Hostile: no sendBeacon and a throwing fetch; then a collector that is
    // down. Nothing may throw into the page, and the page's own code after
    // our calls must still run.
    case 'hostile': {
      await page.addInitScript(() => {
        delete Navigator.prototype.sendBeacon;
        window.fetch = () => { throw new Error('hostile fetch'); };
      });
      pages.set('/hostile', html(tag(), `<script>
        window.tallymark = window.tallymark || function () { (window.tallymark.q = window.tallymark.q || []).push(arguments); };
        tallymark('Early', { at: 'stub' });
        addEventListener('load', function () {
          tallymark.track('Late', { n: 1 });
          history.pushState({}, '', '/hostile/next');
          window.after = true;
        });
      </script>`));
      await page.goto(`${origin}/hostile`);
      await page.waitForTimeout(1000);
      report.after = await page.evaluate(() => window.after === true && typeof window.tallymark.track);
      // The collector is down: the endpoint refuses connections.
      const dead = http.createServer();
      await new Promise((r) => dead.listen(0, '127.0.0.1', r));
      const deadApi = `http://127.0.0.1:${dead.address().port}/api/event`;
      await new Promise((r) => dead.close(r));
      const page2 = await context.newPage();
      page2.on('pageerror', (e) => report.pageErrors.push(String(e)));
      page2.on('console', (m) => { if (m.type() === 'error') report.downErrors = [...(report.downErrors || []), m.text()]; });
      await page2.addInitScript(() => { delete Navigator.prototype.sendBeacon; });
      pages.set('/down', html(tag(`data-api="${deadApi}"`), `<script>
        addEventListener('load', function () { tallymark('Down'); window.after = true; });
      </script>`));
      await page2.goto(`${origin}/down`);
      await page2.waitForTimeout(1000);
      report.afterDown = await page2.evaluate(() => window.after === true);
      break;
    }
    // Opt-ins and opt-outs: hash routing, 404, file downloads, prerendering,
    // localhost without data-allow-localhost, localStorage.tallymark_ignore.
    case 'options': {
      // Prerendering, simulated: document.prerendering is true until the
      // test flips it and fires prerenderingchange.
      await page.addInitScript(() => {
        window.__pr = location.pathname === '/pre';
        Object.defineProperty(Document.prototype, 'prerendering', { configurable: true, get: () => window.__pr });
      });
      // An event queued while prerendered waits for the page to be shown.
      pages.set('/pre', html(tag(), `<script>
        window.tallymark = window.tallymark || function () { (window.tallymark.q = window.tallymark.q || []).push(arguments); };
        tallymark('Hero');
        addEventListener('load', function () { history.pushState({}, '', '/pre/moved'); tallymark('Loaded'); });
      </script>`));
      await page.goto(`${origin}/pre`);
      await page.waitForTimeout(800);
      report.prerenderBeacons = finished;
      await page.evaluate(() => { window.__pr = false; document.dispatchEvent(new Event('prerenderingchange')); });
      await beacons(3);
      const shown = finished;
      pages.set('/hash', html(tag('data-hash data-downloads'), '<a id="dl" href="/files/report.pdf" download>pdf</a>'));
      await page.goto(`${origin}/hash`);
      await beacons(shown + 1);
      await page.evaluate(() => { location.hash = '#/one'; });
      await beacons(shown + 2);
      // The same route again, and an in-page anchor: no page view.
      await page.evaluate(() => { location.hash = '#/one'; });
      await page.evaluate(() => { location.hash = '#install'; });
      await page.click('#dl');
      await beacons(shown + 3);
      pages.set('/404', html(tag('data-404')));
      const notFound = await page.goto(`${origin}/missing-page`);
      report.notFoundStatus = notFound.status();
      await beacons(shown + 5);
      // Opt-outs: nothing at all may be sent.
      const before = finished;
      pages.set('/local', html(`<script defer src="${collector}/js/tallymark.js" data-site="localhost"></script>`));
      await page.goto(`${origin}/local`);
      await page.waitForTimeout(800);
      await page.evaluate(() => localStorage.setItem('tallymark_ignore', 'true'));
      await page.goto(`${origin}/hash`);
      await page.waitForTimeout(800);
      await page.evaluate(() => { window.tallymark('Ignored'); localStorage.removeItem('tallymark_ignore'); });
      await page.waitForTimeout(300);
      report.optOutBeacons = finished - before;
      break;
    }
    // The script twice on one page (a CMS plugin and a pasted tag), on a URL
    // with a campaign query and a fragment holding a secret; the app then
    // drops the query with replaceState, navigates once and sends an event.
    case 'twice': {
      pages.set('/twice', html(tag() + tag()));
      await page.goto(`${origin}/twice?utm_source=mail#access_token=SECRET`);
      await beacons(1);
      await page.waitForTimeout(500);
      await page.evaluate(() => history.replaceState({}, '', '/twice'));
      await page.evaluate(() => history.pushState({}, '', '/twice/next#state=SECRET'));
      await page.evaluate(() => window.tallymark('Once', { n: 1 }));
      await beacons(3);
      await settle();
      break;
    }
    // Engagement: a long page read for over a second and scrolled half
    // way, then an app's next view (its engagement goes first), then left.
    case 'engage': {
      pages.set('/read', html(tag(), '<div style="height:4000px">long</div>'));
      await page.setViewportSize({ width: 800, height: 1000 });
      await page.goto(`${origin}/read`);
      await beacons(1);
      report.focused = await page.evaluate(() => document.visibilityState + ' ' + document.hasFocus());
      await page.waitForTimeout(1300);
      await page.evaluate(() => scrollTo(0, 1000));
      await page.waitForTimeout(200);
      await page.evaluate(() => history.pushState({}, '', '/read/next'));
      await beacons(2);
      // The next view's first depth is measured once it is drawn (1 s).
      await page.waitForTimeout(1300);
      await page.goto(elsewhere);
      await page.waitForTimeout(800);
      break;
    }
    // A copy that is off (localhost, no data-allow-localhost) before one
    // that is on (named by data-domain): the one that is on still counts the
    // page, once.
    case 'offon': {
      const off = `<script defer src="${collector}/js/tallymark.js" data-site="localhost"></script>`;
      // data-domain, Plausible's attribute (a list: its first), names the site too.
      const on = `<script defer src="${collector}/js/tallymark.js" data-domain="localhost, rollup.example" data-allow-localhost></script>`;
      // The copy that is off comes last: the page's tallymark() is its, and
      // it hands the event to the one that is on.
      pages.set('/offon', html(on + off));
      await page.goto(`${origin}/offon`);
      await beacons(1);
      await page.evaluate(() => window.tallymark('Once', { n: 1 }));
      await beacons(2);
      await settle();
      break;
    }
    // Plausible's page API where its tag was swapped for this one: a call
    // queued by its stub before the script ran, a later one with revenue and
    // a callback; then a page where Plausible's own plausible() is defined
    // before this script: it stays Plausible's.
    case 'plausible': {
      const stub = `<script>window.plausible = window.plausible || function () {
        (window.plausible.q = window.plausible.q || []).push(arguments) };
        plausible('Queued', { props: { plan: 'pro' } });</script>`;
      pages.set('/swapped', html(stub + tag()));
      await page.goto(`${origin}/swapped`);
      await beacons(2);
      report.called = await page.evaluate(() => new Promise((resolve) => {
        plausible('pageview');
        plausible('Signup', { props: { n: 2 }, revenue: { amount: '9.50', currency: 'EUR' }, callback: () => resolve(true) });
        setTimeout(() => resolve(false), 3000);
      }));
      await beacons(3);
      report.queue = await page.evaluate(() => plausible.q.length);
      const own = `<script>window.plausible = function (name, options) { (window.own = window.own || []).push(name) };</script>`;
      pages.set('/beside', html(own + tag()));
      await page.goto(`${origin}/beside`);
      await beacons(4);
      await page.evaluate(() => plausible('Kept'));
      report.own = await page.evaluate(() => window.own);
      // Two copies of the tag: the stub's queue (with an entry that is not
      // a call) is read once; Plausible's init() options stay for its script.
      const init = `<script>window.plausible = window.plausible || function () {
        (window.plausible.q = window.plausible.q || []).push(arguments) };
        plausible.init = plausible.init || function (o) { plausible.o = o || {} };
        plausible.init({ endpoint: '/x' });
        plausible('Twice'); plausible.q.push(5);</script>`;
      pages.set('/twice', html(init + tag() + tag()));
      await page.goto(`${origin}/twice`);
      await beacons(6);
      report.options = await page.evaluate(() => plausible.o);
      await settle();
      break;
    }
    // Back to a page, then forward again, both restored from the
    // back/forward cache (no script runs again): each is a page view.
    case 'bfcache': {
      const restored = `<script>addEventListener('pageshow', function (e) {
        if (e.persisted) window.restored = (window.restored || 0) + 1; });</script>`;
      pages.set('/bf/one', html(tag() + restored, '<a id="next" href="/bf/two">two</a>'));
      pages.set('/bf/two', html(tag() + restored));
      await page.goto(`${origin}/bf/one`);
      await beacons(1);
      await page.click('#next');
      await page.waitForURL(`${origin}/bf/two`);
      await beacons(2);
      await page.goBack({ waitUntil: 'commit' });
      await beacons(3);
      report.restoredBack = await page.evaluate(() => window.restored || 0);
      await page.goForward({ waitUntil: 'commit' });
      await beacons(4);
      report.restoredForward = await page.evaluate(() => window.restored || 0);
      await settle();
      break;
    }
    // A bundled app (Vite or webpack) from the packed npm package.
    case 'app': {
      await page.goto(`${origin}/?api=${encodeURIComponent(api)}`);
      await beacons(2);
      report.appText = await page.textContent('body');
      report.storage = await page.evaluate(async () => ({
        localStorage: localStorage.length,
        sessionStorage: sessionStorage.length,
        indexedDB: (await indexedDB.databases()).length,
        cookie: document.cookie,
      }));
      report.cookies = await context.cookies();
      // The wasm blocked (as a strict CSP or a flaky network would): init()
      // resolves to false, nothing throws, nothing is sent.
      const blocked = await context.newPage();
      blocked.on('pageerror', (e) => report.pageErrors.push(String(e)));
      await blocked.route('**/*.wasm', (r) => r.abort());
      await blocked.goto(`${origin}/?api=${encodeURIComponent(api)}`);
      await blocked.waitForFunction(() => document.getElementById('status').textContent !== 'loading');
      report.blockedText = await blocked.textContent('body');
      await blocked.close();
      break;
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
  report.finished = finished;
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(report));
