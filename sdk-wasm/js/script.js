// The script-tag entry: <script defer src=".../js/tallymark.js"
// data-site="example.com" (or data-domain) [data-api="…"] [data-hash] [data-outbound]
// [data-downloads] [data-404] [data-allow-localhost]></script>
//
// The page API is the global function `tallymark(name, props, {revenue})`,
// also reachable as `tallymark.track` (and Plausible's `plausible()`, below). Calls made before this script ran are
// picked up from the usual stub:
//   window.tallymark = window.tallymark || function () {
//     (window.tallymark.q = window.tallymark.q || []).push(arguments) };
// and calls made before the wasm loaded wait in a queue.
try {
  (function () {
    var s = document.currentScript, g = window.tallymark, i;
    var t = function (name, props, options) { tmTrack(name, props, options); };
    t.track = t;
    if (g && g.q) for (i = 0; i < g.q.length; i++) tmQ.push([g.q[i][0], g.q[i][1], g.q[i][2]]);
    window.tallymark = t;
    // Plausible's page API, for a page whose Plausible tag became this one:
    // plausible(name, {props, revenue, interactive, callback}), 'pageview' a
    // view of the current URL. Only Plausible's stub is taken over (its
    // queue, plausible.q, or no call yet: no declared arguments), never its
    // script nor another copy's (tm); the stub's own properties stay (its
    // queue, its init() options), so a Plausible script loaded beside this
    // one still starts and sends what was queued for it.
    var p = window.plausible, pl, k;
    if (!p || (!p.tm && (p.q || !p.length))) {
      pl = function (n, x) {
        try {
          x = x || {};
          if (n == 'pageview') tmPage(); else t(n, x.props, x);
          if (typeof x.callback == 'function') setTimeout(function () { x.callback({}); });
        } catch (e) {}
      };
      if (p) {
        for (k in p) pl[k] = p[k];
        for (i = 0; p.q && i < p.q.length; i++) try { pl.apply(0, p.q[i]); } catch (e) {}
      }
      pl.tm = 1;
      window.plausible = pl;
    }
    if (!s) return;
    var attr = function (n) { return s.getAttribute('data-' + n); };
    var flag = function (n) { var v = attr(n); return v != null && v != 'false'; };
    var o = {
      // data-domain: Plausible's name for it (its first domain when a list),
      // so its tag works as it is.
      site: attr('site') || (attr('domain') || '').split(',')[0].trim(),
      endpoint: attr('api') || new URL('/api/event', s.src).href,
      hash: flag('hash'),
      outbound: flag('outbound'),
      downloads: flag('downloads'),
      notFound: flag('404'),
      allowLocalhost: flag('allow-localhost'),
    };
    // xtask replaces WASM_VERSION with a hash of the .wasm: the collector
    // caches a versioned URL for a year.
    wasm_bindgen({ module_or_path: new URL('tallymark.wasm?v=WASM_VERSION', s.src) })
      .then(function () { tmStart(wasm_bindgen, o); })
      .catch(function () {});
  })();
} catch (e) {}
