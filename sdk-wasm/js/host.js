// The JavaScript host of the Tallymark beacon, shared verbatim by the
// script-tag bundle (js/script.js) and the npm package (js/esm.js); xtask
// concatenates it with wasm-bindgen's glue and minifies the result.
//
// Rust (src/lib.rs) decides what is sent and builds every body with the core
// wire types; this file only wires the page's events to it (and measures
// engagement: visible time and scroll depth) and carries the bodies. Every entry point is inside try/catch: nothing we do ever throws
// into the host page. Nothing here sets a cookie or writes any storage;
// localStorage is only read, for `tallymark_ignore`.

// tmW: the wasm exports once loaded; tmO: the options; tmQ: track() calls
// made before the wasm loaded (or while the page is prerendered), at most
// 100 (a server render or a blocked wasm never drains it); tmF: the track()
// of another copy of the beacon that started first on this page (script tag
// twice, or script tag and npm package): this copy forwards to it; tmOn:
// whether the beacon is on (what the npm entry's init() resolves to).
var tmW, tmO, tmQ = [], tmF, tmOn = false;

// sendBeacon with a text/plain body (no CORS preflight, survives unload);
// when it is missing, throws or refuses, fetch with keepalive at low
// priority. Every failure is swallowed.
function tmSend(body) {
  if (!body) return;
  try {
    if (navigator.sendBeacon(tmO.endpoint, body)) return;
  } catch (e) {}
  try {
    fetch(tmO.endpoint, { method: 'POST', body: body, keepalive: true, priority: 'low' })
      .catch(function () {});
  } catch (e) {}
}

function tmWidth() {
  try { return screen.width | 0; } catch (e) { return 0; }
}

// Engagement of the view being shown: the time the page was visible and
// focused (tmEngMs, plus the running stretch since tmEngAt) and the deepest
// it was seen (tmDepth, percent of its height), sent when it is hidden or
// left and before the next view of an app, then counted afresh. tmEngUrl:
// the URL of that view.
var tmEngUrl, tmEngMs = 0, tmEngAt = 0, tmDepth = 0, tmDepthSent = 0;

// Adds the running stretch (a monotonic clock; a stretch counts at most 30
// minutes: a machine asleep with the page open is no reader) and starts a
// new one if the page is visible and focused.
function tmEngTick() {
  try {
    var now = performance.now();
    if (tmEngAt) tmEngMs += Math.min(Math.max(now - tmEngAt, 0), 18e5);
    tmEngAt = document.visibilityState == 'visible' && document.hasFocus() ? now : 0;
  } catch (e) {}
}

function tmScroll() {
  try {
    var h = Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0);
    var seen = h > 0 ? Math.min(100, Math.round((scrollY + innerHeight) * 100 / h)) : 0;
    if (seen > tmDepth) tmDepth = seen;
  } catch (e) {}
}

// Sends what the view gained since the last engagement sent: a second or
// more of time, or a deeper scroll.
function tmEngage() {
  try {
    tmEngTick();
    if (tmEngUrl && (tmEngMs >= 1000 || tmDepth > tmDepthSent)) {
      tmSend(tmW.engage(tmEngUrl, Math.round(tmEngMs), tmDepth));
      tmEngMs = 0;
      tmDepthSent = tmDepth;
    }
  } catch (e) {}
}

// A page view of the current URL (`replace`: from history.replaceState);
// Rust skips a repeat of the last one. Nothing while prerendered. A new
// view first sends the engagement of the one it replaces.
function tmPage(replace) {
  try {
    if (tmW && !document.prerendering) {
      var body = tmW.send(undefined, location.href, document.referrer, tmWidth(), 0, undefined, replace === true);
      if (body) {
        tmEngage();
        tmEngUrl = location.href;
        tmEngMs = tmEngAt = tmDepth = tmDepthSent = 0;
        tmEngTick();
        // The view's first depth once it is drawn (an app renders its route
        // after pushState, images load after a deferred script); scrolling
        // measures again.
        setTimeout(tmScroll, 1000);
      }
      tmSend(body);
    }
  } catch (e) {}
}

// A custom event. Props go to Rust one by one as string/number/bool (what
// the wire format carries); any other value refuses the event, as the
// collector would.
function tmTrack(name, props, options) {
  try {
    // A copy that is off hands calls to the one counting the page, if any.
    var f = tmF || (tmW && !tmOn && window.__tallymark != tmTrack && window.__tallymark);
    if (f) return f(name, props, options);
    if (!tmW || document.prerendering) {
      if (tmQ.length < 100) tmQ.push([name, props, options]);
      return;
    }
    var revenue = options && options.revenue, k, v, t;
    if (props && typeof props == 'object') {
      for (k in props) {
        if (!Object.prototype.hasOwnProperty.call(props, k)) continue;
        v = props[k];
        t = typeof v;
        // kinds: 0 string, 1 number, 2 boolean, 3 refused (src/lib.rs PROP_*)
        if (t == 'string') tmW.prop(k, v, 0, 0);
        else if (t == 'number') tmW.prop(k, undefined, v, 1);
        else if (t == 'boolean') tmW.prop(k, undefined, +v, 2);
        else if (v != null) tmW.prop(k, undefined, 0, 3);
      }
    }
    // The last argument: not interactive (src/lib.rs `send`).
    tmSend(tmW.send(String(name), location.href, document.referrer, tmWidth(),
      revenue ? +revenue.amount : 0, revenue ? String(revenue.currency) : undefined,
      !!options && options.interactive === false));
  } catch (e) {}
}

// Outbound links and file downloads (both opt-in): the click is sent with
// sendBeacon, which outlives the navigation it starts.
var tmFiles = /\.(pdf|xlsx?|docx?|txt|rtf|csv|exe|key|pp[st]x?|7z|pkg|rar|gz|zip|avi|mov|mp4|mpe?g|wmv|midi?|mp3|wav|wma|dmg|iso|msi|apk)$/i;
function tmClick(e) {
  try {
    if (e.type == 'auxclick' && e.button != 1) return;
    var a = e.target && e.target.closest && e.target.closest('a[href]');
    if (!a) return;
    var u = new URL(a.href, location.href);
    if (u.protocol != 'http:' && u.protocol != 'https:') return;
    // Property values are limited to 256 bytes; an href is ASCII.
    var props = { url: u.href.slice(0, 256) };
    if (tmO.downloads && tmFiles.test(u.pathname)) tmTrack('File Download', props);
    else if (tmO.outbound && u.host != location.host) tmTrack('Outbound Link: Click', props);
  } catch (x) {}
}

// Sends (or forwards) the track() calls queued so far.
function tmDrain() {
  var queued = tmQ, i;
  tmQ = [];
  for (i = 0; i < queued.length; i++) tmTrack(queued[i][0], queued[i][1], queued[i][2]);
}

// The first page view, the 404 event when opted in and the navigation's
// HTTP status was 404, then the events queued before.
function tmFirst() {
  tmPage();
  try {
    var n = tmO.notFound && performance.getEntriesByType('navigation')[0];
    if (n && n.responseStatus == 404) tmTrack('404', { path: location.pathname });
  } catch (e) {}
  tmDrain();
}

// Starts the beacon with the wasm exports `w` and options `o`:
// {site, endpoint, hash, outbound, downloads, notFound, allowLocalhost}.
// Returns whether the beacon is on (anything will be sent).
function tmStart(w, o) {
  try {
    var ignore = false, h = history;
    try { ignore = localStorage.getItem('tallymark_ignore') == 'true'; } catch (e) {}
    if (tmW || tmF) return tmOn; // already started
    // Another copy already counts this page: forward to it.
    if (window.__tallymark) {
      tmF = window.__tallymark;
      tmDrain();
      return tmOn = true;
    }
    tmW = w;
    tmO = o;
    var on = function () {
      return w.start(o.site || location.hostname, location.hostname, ignore,
        (o.hash ? 1 : 0) | (o.allowLocalhost ? 2 : 0));
    };
    if (!on()) {
      // Calls queued here go to a copy that counts the page, if one does.
      if (window.__tallymark) {
        tmF = window.__tallymark;
        tmDrain();
      }
      return false;
    }
    // Only a copy that is on counts the page for the others: one that is off
    // (localhost) must not silence one told to send from there.
    window.__tallymark = tmTrack;
    ['pushState', 'replaceState'].forEach(function (m) {
      var f = h[m];
      if (typeof f == 'function') {
        h[m] = function () {
          var r = f.apply(this, arguments);
          tmPage(m == 'replaceState');
          return r;
        };
      }
    });
    addEventListener('popstate', function () { tmPage(); });
    addEventListener('scroll', tmScroll, { passive: true });
    addEventListener('focus', tmEngTick);
    addEventListener('blur', tmEngTick);
    addEventListener('pagehide', function () {
      tmEngage();
      tmEngAt = 0; // a page kept in the back/forward cache is not read
    });
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState == 'hidden') tmEngage();
      else tmEngTick();
    });
    // Back/forward to a page kept in the back/forward cache runs no script
    // again: it is a new view of the page (as a reload would be), so Rust's
    // "same URL as the last view" is reset first.
    addEventListener('pageshow', function (e) {
      try { if (e.persisted && on()) tmPage(); } catch (x) {}
    });
    if (o.hash) addEventListener('hashchange', function () { tmPage(); });
    if (o.outbound || o.downloads) {
      document.addEventListener('click', tmClick, true);
      document.addEventListener('auxclick', tmClick, true);
    }
    // A prerendered page counts when (and only if) it is shown; so do the
    // events it queued.
    if (document.prerendering) document.addEventListener('prerenderingchange', tmFirst, { once: true });
    else tmFirst();
    return tmOn = true;
  } catch (e) {
    return false;
  }
}
