// Times the script-tag SDK in real Chromium against a baseline in the same
// run and prints JSON for `cargo xtask bench sdk` (xtask/src/bench_sdk.rs).
// No assertions: figures only.
//
// usage: node bench-sdk.mjs SCRIPT_DIR [LOADS]
//
// Two pages, loaded alternately LOADS times each, from one local server:
//   sdk:      <script defer src="/tallymark.js" data-site=… data-api="/api/event">
//   baseline: <script defer src="/baseline.js">, whose one line is
//             navigator.sendBeacon('/api/event', '{…}') — the least a beacon can do.
// Both scripts are served with `performance.now()` recorded as their first
// statement, and `navigator.sendBeacon` is wrapped (init script) to record
// when it is first called, so "to first beacon" = from the script's first
// statement to the first sendBeacon call (for the SDK: fetch, compile and
// instantiate the wasm, build the body). The pages are cross-origin isolated
// (COOP/COEP), which gives performance.now() 5 µs resolution instead of 100.
//
// "Longest task" and "main-thread busy": from a Chromium trace of each load,
// the RunTasks on the renderer main thread between the script's evaluation
// and the beacon's request (see mainThreadCost).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { humanContext, launchHuman } from './chromium.mjs';

const [dir, loadsArg] = process.argv.slice(2);
const loads = Number(loadsArg) || 15;
const MARK = 'window.__tmT0=performance.now();';
const sdkJs = MARK + fs.readFileSync(path.join(dir, 'tallymark.js'), 'utf8');
const wasm = fs.readFileSync(path.join(dir, 'tallymark.wasm'));
const body = JSON.stringify({ kind: 'pageview', site: 'example.com', url: 'https://example.com/' });
const baselineJs = `${MARK}navigator.sendBeacon('/api/event',${JSON.stringify(body)});`;
const page = (script) =>
  `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">${script}</head><body><p>bench</p></body></html>`;
const pages = {
  '/sdk': page('<script defer src="/tallymark.js" data-site="example.com" data-api="/api/event" data-allow-localhost></script>'),
  '/baseline': page('<script defer src="/baseline.js"></script>'),
};

const isolated = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cache-control': 'no-store',
};
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const send = (type, data) => {
    res.writeHead(200, { 'content-type': type, ...isolated });
    res.end(data);
  };
  if (pages[url.pathname]) return send('text/html; charset=utf-8', pages[url.pathname]);
  if (url.pathname === '/tallymark.js') return send('text/javascript', sdkJs);
  if (url.pathname === '/baseline.js') return send('text/javascript', baselineJs);
  if (url.pathname === '/tallymark.wasm') return send('application/wasm', wasm);
  if (url.pathname === '/api/event') {
    req.resume();
    res.writeHead(204, isolated);
    return res.end();
  }
  res.writeHead(404, isolated);
  res.end();
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://localhost:${server.address().port}`;

// Records the first sendBeacon call's time; the original still sends.
function hookBeacon() {
  const send = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = function (u, d) {
    if (window.__tmBeacon === undefined) window.__tmBeacon = performance.now();
    return send(u, d);
  };
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) window.__tmLong = Math.max(window.__tmLong || 0, e.duration);
  }).observe({ type: 'longtask', buffered: true });
}

// The main-thread cost of one load's beacon, from a Chromium trace: the
// window runs from the evaluation of `script` (EvaluateScript) to the
// request to /api/event (ResourceSendRequest); `task` is the longest RunTask
// on the page's main thread overlapping it (what it blocks the page for
// at most), `busy` the main-thread time inside it.
function mainThreadCost(trace, script) {
  const events = JSON.parse(trace.toString()).traceEvents || [];
  const url = (e) => (e.args && e.args.data && e.args.data.url) || '';
  const start = events.find((e) => e.name === 'EvaluateScript' && url(e).endsWith(script));
  const sent = events.find((e) => e.name === 'ResourceSendRequest' && url(e).endsWith('/api/event'));
  if (!start || !sent) return { task: null, busy: null };
  // The page's main thread: the one that evaluated the script.
  // Chromium names its task events one of two ways, and may nest them:
  // count one kind only, so no time is counted twice.
  const kind = events.some((e) => e.name === 'ThreadControllerImpl::RunTask')
    ? 'ThreadControllerImpl::RunTask' : 'RunTask';
  let task = 0;
  let busy = 0;
  for (const e of events) {
    if (e.ph !== 'X' || e.name !== kind) continue;
    if (e.pid !== start.pid || e.tid !== start.tid) continue;
    const end = e.ts + (e.dur || 0);
    if (end < start.ts || e.ts > sent.ts) continue;
    task = Math.max(task, e.dur || 0);
    busy += Math.min(end, sent.ts) - Math.max(e.ts, start.ts);
  }
  return { task: task / 1000, busy: busy / 1000 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : null;
};

const browser = await launchHuman();
const result = { loads, isolated: null, sdk: {}, baseline: {} };
try {
  const context = await humanContext(browser);
  await context.addInitScript(hookBeacon);
  const runs = {};
  for (const name of ['sdk', 'baseline']) runs[name] = { beacon: [], task: [], busy: [], long: 0 };
  const scripts = { sdk: '/tallymark.js', baseline: '/baseline.js' };
  // One warm-up load each (disk cache is off: no-store; this warms Chromium itself).
  for (let i = -1; i < loads; i++) {
    for (const name of ['sdk', 'baseline']) {
      const p = await context.newPage();
      await browser.startTracing(p, { categories: ['devtools.timeline', 'toplevel'] });
      await p.goto(`${origin}/${name}`);
      await p.waitForFunction(() => window.__tmBeacon !== undefined, null, { timeout: 10000 });
      await p.waitForTimeout(50); // let the task that sent it end
      const t = await p.evaluate(() => ({
        beacon: window.__tmBeacon - window.__tmT0,
        long: window.__tmLong || 0,
        isolated: self.crossOriginIsolated,
      }));
      const trace = await browser.stopTracing();
      await p.close();
      if (i < 0) continue;
      result.isolated = t.isolated;
      runs[name].beacon.push(t.beacon);
      const cost = mainThreadCost(trace, scripts[name]);
      if (cost.task !== null) {
        runs[name].task.push(cost.task);
        runs[name].busy.push(cost.busy);
      }
      runs[name].long = Math.max(runs[name].long, t.long);
    }
  }
  for (const name of ['sdk', 'baseline']) {
    result[name] = {
      first_beacon_ms: median(runs[name].beacon),
      longest_task_ms: median(runs[name].task),
      main_thread_busy_ms: median(runs[name].busy),
      traced_loads: runs[name].task.length,
      longtasks_over_50ms_max_ms: runs[name].long,
    };
  }
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
