// The Tallymark dashboard: one page over the stats API (docs/stats-api.md),
// no framework, no build step, no third-party request, no storage. The
// token lives in the address after `#token=` (never sent to a server but as
// the Authorization header); the view (site, period, filters, metric) in its
// query string, so a reload, a bookmark or Back shows the same view. Every
// path is relative to the page (`api/v1/…`), so it also works under a
// proxy's prefix (`/stats/dashboard`).
'use strict';

(function () {
  var $ = function (id) { return document.getElementById(id); };

  // The figures of the aggregate, in card order: [metric, label, format].
  var CARDS = [
    ['visitors', 'Unique visitors (daily)', 'count'],
    ['visits', 'Visits', 'count'],
    ['pageviews', 'Pageviews', 'count'],
    ['views_per_visit', 'Views per visit', 'decimal'],
    ['bounce_rate', 'Bounce rate', 'percent'],
    ['visit_duration', 'Visit duration', 'duration'],
    ['events', 'Events', 'count'],
  ];
  // With a filter on an event name (a goal), as Plausible shows it.
  var GOAL_CARDS = [
    ['visitors', 'Unique conversions', 'count'],
    ['events', 'Total conversions', 'count'],
  ];
  // Lower is better for these: a fall is shown green.
  var INVERTED = { bounce_rate: true };

  // Breakdown panels: tabs of [label, property, metrics]; the first metric
  // sizes the bars.
  var PANELS = [
    ['Sources', [
      ['Source', 'source', 'visitors'],
      ['Channel', 'channel', 'visitors'],
      ['Referrer', 'referrer', 'visitors'],
      ['UTM source', 'utm_source', 'visitors'],
      ['UTM medium', 'utm_medium', 'visitors'],
      ['UTM campaign', 'utm_campaign', 'visitors'],
    ]],
    ['Pages', [
      ['Top pages', 'page', 'visitors,pageviews'],
      ['Entry pages', 'entry_page', 'visits,bounce_rate'],
      ['Exit pages', 'exit_page', 'visits'],
      ['Hostnames', 'hostname', 'visitors,pageviews'],
      // Time on page and scroll depth (read from raw rows: only on a click).
      ['Engagement', 'page', 'visitors,time_on_page,scroll_depth'],
    ]],
    // Regions and cities need a city database (`--geoip`).
    ['Locations', [
      ['Country', 'country', 'visitors'],
      ['Region', 'region', 'visitors'],
      ['City', 'city', 'visitors'],
    ]],
    ['Devices', [
      ['Device', 'device', 'visitors'],
      ['Browser', 'browser', 'visitors'],
      ['Browser version', 'browser_version', 'visitors'],
      ['OS', 'os', 'visitors'],
      ['OS version', 'os_version', 'visitors'],
    ]],
    ['Goals', [
      ['Custom events', 'event:name', 'visitors,events,conversion_rate,revenue'],
      // Keys; clicking one opens a tab of its values.
      ['Properties', 'event:props', 'visitors,events'],
    ]],
  ];
  var HEADINGS = {
    visitors: 'Visitors', visits: 'Visits', pageviews: 'Views', events: 'Events',
    bounce_rate: 'Bounce', revenue: 'Revenue', time_on_page: 'Time on page', scroll_depth: 'Scroll',
    conversion_rate: 'CR',
  };
  var NAMES = {
    page: 'page', hostname: 'hostname', entry_page: 'entry page', exit_page: 'exit page', source: 'source',
    referrer: 'referrer', channel: 'channel', utm_source: 'UTM source',
    utm_medium: 'UTM medium', utm_campaign: 'UTM campaign', utm_term: 'UTM term',
    utm_content: 'UTM content', country: 'country', region: 'region', city: 'city', browser: 'browser', browser_version: 'browser version', os: 'OS',
    os_version: 'OS version', device: 'device', 'event:name': 'goal',
  };
  var PERIODS = ['realtime', 'day', '7d', '30d', 'month', '6mo', '12mo', 'year', 'custom'];

  var token = '';
  // `date`: the period's anchor day (YYYY-MM-DD), empty for today; `from`
  // and `to`: the days of a custom period.
  // `steps`: the funnel's steps, shown below the panels when there are two
  // or more.
  var view = { site: '', period: '30d', date: '', from: '', to: '', metric: 'visitors', filters: [], steps: [] };
  var timezone = 'UTC';
  // The resolved days of the period shown: {from, to}.
  var shown = null;
  // Per panel: the chosen tab, how many rows to show, and the property key
  // opened from a "Properties" tab.
  var tabs = {}, limits = {}, keys = {};
  var generation = 0;

  var DAY = /^\d{4}-\d{2}-\d{2}$/;

  function readAddress() {
    var hash = new URLSearchParams(location.hash.slice(1));
    token = hash.get('token') || '';
    var q = new URLSearchParams(location.search);
    view.site = q.get('site') || '';
    view.period = PERIODS.indexOf(q.get('period')) >= 0 ? q.get('period') : '30d';
    view.date = DAY.test(q.get('date') || '') ? q.get('date') : '';
    view.from = DAY.test(q.get('from') || '') ? q.get('from') : '';
    view.to = DAY.test(q.get('to') || '') ? q.get('to') : '';
    if (view.period === 'custom' && !(view.from && view.to)) view.period = '30d';
    view.metric = q.get('metric') || 'visitors';
    var known = view.metric === 'revenue' || CARDS.some(function (c) { return c[0] === view.metric; });
    if (!known) view.metric = 'visitors';
    view.filters = q.getAll('filter');
    view.steps = q.getAll('step');
    // Each panel's tab, by its property (`sources=channel`); a property key
    // opened from "Properties" is `goals=event:props:plan`.
    tabs = {}; keys = {}; limits = {};
    PANELS.forEach(function (panel) {
      var name = panel[0], want = q.get(name.toLowerCase()) || '';
      var i = panel[1].findIndex(function (c) { return c[1] === want; });
      if (i > 0) tabs[name] = i;
      var key = want.indexOf('event:props:') === 0 ? want.slice('event:props:'.length) : '';
      if (key && panel[1].some(function (c) { return c[1] === 'event:props'; })) {
        keys[name] = key;
        tabs[name] = panel[1].length;
      }
    });
  }

  // The property shown in a panel.
  function tabProperty(panel) {
    var name = panel[0];
    if (keys[name] && tabs[name] === panel[1].length) return 'event:props:' + keys[name];
    var c = panel[1][tabs[name] || 0] || panel[1][0];
    return c[1];
  }

  // `push`: a new history entry (what the user did, so Back undoes it);
  // else the current one is corrected in place.
  function writeAddress(push) {
    var q = new URLSearchParams();
    if (view.site) q.set('site', view.site);
    q.set('period', view.period);
    if (view.period === 'custom') {
      q.set('from', view.from);
      q.set('to', view.to);
    } else if (view.date) {
      q.set('date', view.date);
    }
    if (view.metric !== 'visitors') q.set('metric', view.metric);
    view.filters.forEach(function (f) { q.append('filter', f); });
    view.steps.forEach(function (s) { q.append('step', s); });
    PANELS.forEach(function (panel) {
      var property = tabProperty(panel);
      if (property !== panel[1][0][1]) q.set(panel[0].toLowerCase(), property);
    });
    var url = '?' + q.toString() + location.hash;
    if (url === location.search + location.hash) return;
    if (push) history.pushState(null, '', url);
    else history.replaceState(null, '', url);
  }

  // Requests in flight: the board is `aria-busy` until all have answered.
  var pending = 0;
  function busy(delta) {
    pending += delta;
    $('board').setAttribute('aria-busy', String(pending > 0));
  }

  function api(path, params) {
    var q = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) {
      var v = params[k];
      if (Array.isArray(v)) v.forEach(function (x) { q.append(k, x); });
      else if (v !== undefined && v !== '') q.set(k, v);
    });
    var url = path + (q.toString() ? '?' + q.toString() : '');
    busy(1);
    return fetch(url, { headers: { Authorization: 'Bearer ' + token } }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) {
          var e = new Error(body.error || ('HTTP ' + r.status));
          e.status = r.status;
          throw e;
        }
        return body;
      });
    }).then(function (body) { busy(-1); return body; }, function (e) { busy(-1); throw e; });
  }

  function el(tag, attrs, children) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') n.textContent = attrs[k];
      else if (k === 'onclick') n.addEventListener('click', attrs[k]);
      else n.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) n.appendChild(c); });
    return n;
  }

  function svg(tag, attrs) {
    var n = document.createElementNS('http://www.w3.org/2000/svg', tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    return n;
  }

  function showError(message) {
    var e = $('error');
    e.textContent = message || '';
    e.hidden = !message;
  }

  function showNotice(message) {
    var n = $('notice');
    n.textContent = message || '';
    n.hidden = !message;
  }

  var numbers = new Intl.NumberFormat('en');
  function format(value, kind) {
    if (value === undefined || value === null) return '–';
    if (kind === 'percent') return value.toFixed(1) + '%';
    if (kind === 'share') return value + '%';
    if (kind === 'decimal') return value.toFixed(2);
    if (kind === 'duration') {
      var m = Math.floor(value / 60), s = value % 60;
      return m ? m + 'm ' + (s < 10 ? '0' : '') + s + 's' : s + 's';
    }
    return numbers.format(value);
  }

  function money(r) {
    try {
      return new Intl.NumberFormat('en', { style: 'currency', currency: r.currency }).format(r.total);
    } catch (e) {
      return r.total + ' ' + r.currency;
    }
  }

  var regions = null;
  try { regions = new Intl.DisplayNames(['en'], { type: 'region' }); } catch (e) { regions = null; }
  // Display names of stored labels (`macos` → `macOS`), from the collector
  // (dashboard/labels.json, made from core's enums); filters keep the labels.
  var LABELS = {};
  var NONE = { source: 'Direct / None', referrer: 'Direct / None', country: 'Unknown', region: 'Unknown', city: 'Unknown', os_version: 'Unknown' };
  function label(property, value) {
    if (property === 'country' && regions && /^[A-Z]{2}$/.test(value)) {
      try { return regions.of(value) + ' (' + value + ')'; } catch (e) { return value; }
    }
    // `DE Bavaria`, `US Portland, Oregon`: the name, then its country's code.
    var place = (property === 'region' || property === 'city') && /^([A-Z]{2}) (.+)$/.exec(value);
    if (place) return place[2] + ' (' + place[1] + ')';
    // `chrome 120`, `ios 17.2`: the browser's (or OS's) name and its version.
    var v = (property === 'browser_version' || property === 'os_version') && /^(.*) (\d+(\.\d+)?)$/.exec(value);
    if (v) return label(property === 'os_version' ? 'os' : 'browser', v[1]) + ' ' + v[2];
    var names = LABELS[property];
    if (names && Object.prototype.hasOwnProperty.call(names, value)) return names[value];
    if (value === '(none)' && NONE[property]) return NONE[property];
    return value;
  }

  // The goal filters (an event name), which turn the board into conversions.
  function goalFilters() {
    return view.filters.filter(function (f) { return /^event:name(==|~)/.test(f) && f !== 'event:name==(none)'; });
  }

  // --- login -------------------------------------------------------------

  function showLogin(message) {
    $('login').hidden = false;
    $('board').hidden = true;
    ['site', 'period', 'custom', 'nav', 'realtime'].forEach(function (id) { $(id).hidden = true; });
    showError(message);
  }

  $('login').addEventListener('submit', function (e) {
    e.preventDefault();
    var t = $('token').value.trim();
    if (!t) return;
    $('token').value = '';
    location.hash = 'token=' + encodeURIComponent(t);
  });

  // --- the board ---------------------------------------------------------

  function start() {
    readAddress();
    showNotice('');
    if (!token) { showLogin(''); return; }
    // Without the names, values show as stored: nothing else depends on them.
    var names = fetch('dashboard/labels.json').then(function (r) { return r.json(); })
      .then(function (l) { LABELS = l || {}; }, function () {});
    Promise.all([api('api/v1/sites'), names]).then(function (both) {
      var body = both[0];
      var sites = body.sites || [];
      if (!sites.length) {
        showLogin('No sites yet: register one with `tallymark site add example.com`.');
        $('login').hidden = true;
        return;
      }
      var select = $('site');
      select.textContent = '';
      sites.forEach(function (s) { select.appendChild(el('option', { value: s.domain, text: s.domain })); });
      if (view.site && !sites.some(function (s) { return s.domain === view.site; })) {
        showNotice(view.site + ' is not a site this token reads (removed, or never added): showing ' + sites[0].domain + '.');
        view.site = '';
        view.filters = [];
      }
      if (!view.site) view.site = sites[0].domain;
      select.value = view.site;
      var site = sites.filter(function (s) { return s.domain === view.site; })[0];
      timezone = site.timezone;
      $('login').hidden = true;
      $('board').hidden = false;
      ['site', 'period', 'nav'].forEach(function (id) { $(id).hidden = false; });
      showVolume(site);
      keptFrom = site.kept_from || '';
      imported = site.imported || null;
      // The custom range's pickers start at the oldest day kept.
      $('from').min = $('to').min = keptFrom;
      refresh();
    }).catch(function (e) {
      showLogin(e.status === 401 ? 'That token is not known to this collector (or its site was removed).' : e.message);
    });
  }

  // The oldest day the collector keeps (`--retention-days`), or ''.
  var keptFrom = '';
  // The days imported from Plausible (`{from, to}`), or null.
  var imported = null;

  // Says what imported days hold when the period reaches them.
  function showImported(body) {
    var p = $('imported');
    var spans = [body.period, body.comparison && body.comparison.period]
      .filter(function (x) { return x && x.from && x.to; });
    p.hidden = !imported || !spans.some(function (x) { return x.from <= imported.to && x.to >= imported.from; });
    if (!p.hidden) {
      p.textContent = 'Days from ' + imported.from + ' to ' + imported.to +
        ' were imported as daily totals: they count in the totals, the daily graph and the panels ' +
        '(regions and cities only if imported with a city database), ' +
        'and under one filter on the visit (a source, country, device, …) or one goal; ' +
        'not by the hour, under other filters, nor in the panels under a goal.';
    }
  }

  // Says so when the period, or the one it is compared with, starts before
  // the oldest day kept: those days count nothing, they were not empty.
  function showKept(body) {
    var p = $('kept');
    var starts = [body.period, body.comparison && body.comparison.period]
      .filter(function (x) { return x && x.from; })
      .map(function (x) { return x.from; });
    p.hidden = !keptFrom || !starts.some(function (from) { return from < keptFrom; });
    if (!p.hidden) {
      p.textContent = 'This collector keeps events from ' + keptFrom +
        ' on; older ones were deleted, so days before it count nothing here (and in the comparison).';
    }
  }

  function showVolume(site) {
    var v = site && site.volume, p = $('volume');
    p.hidden = !(v && v.dropped_percent !== null && v.dropped_percent !== undefined);
    if (!p.hidden) {
      p.textContent = 'Events fell ' + v.dropped_percent + '% in the last 24 hours (' +
        numbers.format(v.last_24h) + ' against ' + numbers.format(v.previous_24h) +
        ' the day before). If traffic did not really fall, check that the script still loads on your pages.';
    }
  }

  function period() {
    if (view.period === 'custom') return { period: 'custom', from: view.from, to: view.to };
    return { period: view.period, date: view.date };
  }

  function common() {
    return Object.assign({ site: view.site, filter: view.filters }, period());
  }

  // Days as YYYY-MM-DD strings, moved in UTC (no DST in whole days).
  function addDays(day, n) {
    var d = new Date(day + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  // The first day of the month `n` months after `day`'s.
  function addMonths(day, n) {
    var d = new Date(day.slice(0, 7) + '-01T00:00:00Z');
    d.setUTCMonth(d.getUTCMonth() + n);
    return d.toISOString().slice(0, 10);
  }

  // Periods of whole calendar months: how many.
  var MONTHS = { month: 1, '6mo': 6, '12mo': 12 };

  function daysBetween(a, b) {
    return Math.round((Date.parse(b + 'T00:00:00Z') - Date.parse(a + 'T00:00:00Z')) / 86400000);
  }

  function today() {
    try {
      return new Intl.DateTimeFormat('en-CA', { timeZone: timezone }).format(new Date());
    } catch (e) {
      return new Date().toISOString().slice(0, 10);
    }
  }

  // Whether the period anchored on `day` is the current one.
  function isCurrent(day) {
    var t = today();
    if (MONTHS[view.period]) return day.slice(0, 7) >= t.slice(0, 7);
    if (view.period === 'year') return day.slice(0, 4) >= t.slice(0, 4);
    return day >= t;
  }

  // Previous: the period that ends the day before this one starts. Next:
  // the one after this one ends (today's at most).
  function move(step) {
    if (!shown) return;
    $('prev').disabled = $('next').disabled = true; // until this one is shown
    if (view.period === 'custom') {
      var len = daysBetween(shown.from, shown.to) + 1;
      view.from = addDays(shown.from, step * len);
      view.to = addDays(shown.to, step * len);
      // Never past today: the last range ends today.
      if (view.to > today()) {
        view.to = today();
        view.from = addDays(view.to, 1 - len);
      }
      $('from').value = view.from;
      $('to').value = view.to;
    } else {
      var anchor = step < 0 ? addDays(shown.from, -1)
        : MONTHS[view.period] ? addMonths(shown.to, MONTHS[view.period])
        : addDays(shown.to, ({ day: 1, '7d': 7, '30d': 30 })[view.period] || 1);
      view.date = isCurrent(anchor) ? '' : anchor;
    }
    refresh(true);
  }

  function showRange(p) {
    shown = p && p.from ? { from: p.from, to: p.to } : null;
    $('range').textContent = !shown ? '' : shown.from === shown.to ? shown.from : shown.from + ' – ' + shown.to;
    $('prev').disabled = !shown;
    $('next').disabled = !shown || (view.period === 'custom' ? shown.to >= today() : !view.date);
  }

  // Everything on the board is from one view: a failed request must not
  // leave another view's figures under this view's labels.
  function clearBoard(message) {
    $('cards').textContent = '';
    $('chart').textContent = '';
    $('chart-caption').textContent = '';
    $('chart-axis').textContent = '';
    showRange(null);
    [].forEach.call(document.querySelectorAll('.panel-body'), function (b) {
      b.textContent = '';
      b.appendChild(el('p', { class: 'empty', text: message }));
    });
  }

  // The period picker says "Last 30 days" for the current period and "30
  // days" for one moved back to (the range beside it says which).
  var CURRENT = {};
  var PAST = { day: 'Day', '7d': '7 days', '30d': '30 days', month: 'Month', '6mo': '6 months', '12mo': '12 months', year: 'Year' };
  function periodLabels() {
    [].forEach.call($('period').options, function (o) {
      if (!(o.value in CURRENT)) CURRENT[o.value] = o.textContent;
      o.textContent = view.date && o.value === view.period && PAST[o.value] ? PAST[o.value] : CURRENT[o.value];
    });
  }

  function refresh(push) {
    writeAddress(push);
    showError('');
    var g = ++generation;
    var current = function () { return g === generation; };
    $('period').value = view.period;
    periodLabels();
    $('custom').hidden = view.period !== 'custom';
    // The last 5 minutes have no previous or next.
    $('nav').hidden = view.period === 'realtime';
    if (view.period === 'custom') {
      $('from').value = view.from;
      $('to').value = view.to;
    }
    renderFilters();
    var failed = false;
    var fail = function (e) {
      if (!current() || failed) return;
      failed = true;
      // A bookmarked day that does not exist (2026-02-30): today instead.
      if (e.status === 400 && /^date/.test(e.message) && view.date) {
        view.date = '';
        refresh();
        return;
      }
      showError(e.message);
      clearBoard('Could not load: ' + e.message);
    };
    var p = common();
    var goals = goalFilters();
    api('api/v1/stats/aggregate', Object.assign({ compare: 'previous_period' }, p))
      .then(function (body) {
        if (!current()) return;
        showRange(body.period);
        showKept(body);
        showImported(body);
        renderCards(body, goals.length > 0);
        if (goals.length) conversionRate(current);
      }).catch(fail);
    api('api/v1/stats/timeseries', Object.assign({ metrics: view.metric }, p))
      .then(function (body) { if (current()) renderChart(body); }).catch(fail);
    realtime();
    renderPanels(current);
    renderFunnel(current);
  }

  // Unique conversions over the visitors of the same view without the goal
  // (and without its property filters, part of what a conversion is): the
  // collector's conversion_rate.
  function conversionRate(current) {
    api('api/v1/stats/aggregate', Object.assign({ metrics: 'conversion_rate' }, common())).then(function (body) {
      if (!current()) return;
      var rate = body.results.conversion_rate || 0;
      $('cards').insertBefore(el('div', {
        class: 'card', 'data-metric': 'conversion_rate',
        title: 'Unique conversions over all visitors of the period',
      }, [
        el('span', { class: 'label', text: 'Conversion rate' }),
        el('span', { class: 'value', text: rate.toFixed(1) + '%' }),
      ]), $('cards').children[2] || null);
    }).catch(function () {});
  }

  var realtimeAsked = 0;
  function realtime() {
    var asked = ++realtimeAsked;
    api('api/v1/stats/realtime', { site: view.site, filter: view.filters }).then(function (body) {
      // Only the answer to the latest question (filters may have changed).
      if (asked !== realtimeAsked) return;
      var r = $('realtime');
      r.textContent = '● ' + numbers.format(body.visitors) + (body.visitors === 1 ? ' current visitor' : ' current visitors');
      r.hidden = false;
    }).catch(function () {});
  }

  function renderFilters() {
    var box = $('filters');
    box.textContent = '';
    view.filters.forEach(function (f, i) {
      var m = f.match(/^(.*?)(==|!=|~)(.*)$/);
      var text = f;
      if (m) {
        var dim = NAMES[m[1]] || m[1].replace(/^event:props:/, 'property ');
        var values = splitValues(m[3]).map(function (v) { return label(m[1], v); });
        text = dim + (m[2] === '==' ? ' is ' : m[2] === '!=' ? ' is not ' : ' contains ') + values.join(' or ');
      }
      box.appendChild(el('button', {
        type: 'button', title: 'Remove this filter', text: text + ' ×',
        onclick: function () { view.filters.splice(i, 1); refresh(true); },
      }));
    });
  }

  // A filter's values, to show: joined by |, a | or * inside one written
  // \| or \* (as the collector reads them; no regex lookbehind, which older
  // Safari lacks).
  function splitValues(text) {
    var values = [''], i, c;
    for (i = 0; i < text.length; i++) {
      c = text.charAt(i);
      if (c === '\\' && (text.charAt(i + 1) === '|' || text.charAt(i + 1) === '*')) { values[values.length - 1] += text.charAt(++i); }
      else if (c === '|') values.push('');
      else values[values.length - 1] += c;
    }
    return values;
  }

  function addFilter(property, value) {
    // A | or * in a value is escaped: the collector reads | as "or" and *
    // as a wildcard.
    var f = property + '==' + value.replace(/[|*]/g, '\\$&');
    if (view.filters.indexOf(f) < 0) view.filters.push(f);
    refresh(true);
  }

  function renderCards(body, goal) {
    var box = $('cards');
    box.textContent = '';
    var r = body.results || {}, change = (body.comparison && body.comparison.change) || {};
    (goal ? GOAL_CARDS : CARDS).forEach(function (c) {
      var ch = change[c[0]], changeEl = null;
      if (ch !== undefined && ch !== null) {
        var good = INVERTED[c[0]] ? ch < 0 : ch > 0;
        changeEl = el('span', {
          class: 'change ' + (ch === 0 ? '' : good ? 'up' : 'down'),
          text: (ch > 0 ? '↑ ' : ch < 0 ? '↓ ' : '') + Math.abs(ch) + '%',
          title: 'Against the previous period',
        });
      }
      box.appendChild(el('button', {
        type: 'button', class: 'card', 'data-metric': c[0],
        'aria-pressed': String(view.metric === c[0]),
        title: c[0] === 'visitors' ? 'Distinct daily visitor ids: a person counts once per day they came' : '',
        onclick: function () { view.metric = c[0]; refresh(true); },
      }, [
        el('span', { class: 'label', text: c[1] }),
        el('span', { class: 'value', text: format(r[c[0]], c[2]) }),
        changeEl,
      ]));
    });
    var revenue = r.revenue || [];
    if (revenue.length) {
      box.appendChild(el('button', {
        type: 'button', class: 'card', 'data-metric': 'revenue',
        'aria-pressed': String(view.metric === 'revenue'),
        title: 'Per currency, never converted',
        onclick: function () { view.metric = 'revenue'; refresh(true); },
      }, [el('span', { class: 'label', text: 'Revenue' })].concat(revenue.map(function (x) {
        return el('span', { class: 'value money', text: money(x) });
      }))));
    }
  }

  // The currency a revenue chart shows: the one most revenue events were
  // in (the API sorts revenue breakdowns by it too).
  function mainCurrency(rows) {
    var events = {}, best = '';
    rows.forEach(function (row) {
      (row.revenue || []).forEach(function (x) { events[x.currency] = (events[x.currency] || 0) + x.events; });
    });
    Object.keys(events).sort().forEach(function (c) { if (!best || events[c] > events[best]) best = c; });
    return best;
  }

  function chartValue(row, metric, currency) {
    if (metric !== 'revenue') return row[metric] || 0;
    var r = (row.revenue || []).filter(function (x) { return x.currency === currency; })[0];
    return r ? r.total : 0;
  }

  // Bars in an SVG stretched to the box; the words around it are HTML, so
  // they stay readable on a phone.
  function renderChart(body) {
    var chart = $('chart');
    chart.textContent = '';
    var rows = body.results || [], metric = view.metric;
    var currency = metric === 'revenue' ? mainCurrency(rows) : '';
    var values = rows.map(function (r) { return chartValue(r, metric, currency); });
    var max = Math.max.apply(null, [0].concat(values)), min = Math.min.apply(null, [0].concat(values));
    var show = function (v) {
      return metric === 'revenue' ? (currency ? money({ currency: currency, total: v }) : '–') : format(v, card(metric)[2]);
    };
    var W = 1000, H = 200, span = max - min || 1, zero = H * max / span;
    var n = Math.max(rows.length, 1), step = W / n, gap = Math.min(2, step * 0.2);
    rows.forEach(function (row, i) {
      var v = values[i], h = H * Math.abs(v) / span;
      var rect = svg('rect', {
        x: i * step + gap / 2, y: v >= 0 ? zero - h : zero, width: Math.max(step - gap, 0.5), height: h,
        class: v < 0 ? 'negative' : '', 'data-date': row.date,
      });
      var title = svg('title');
      title.textContent = when(row.date) + ': ' + show(v);
      rect.appendChild(title);
      chart.appendChild(rect);
    });
    if (min < 0) chart.appendChild(svg('line', { x1: 0, x2: W, y1: zero, y2: zero, class: 'zero' }));
    var name = metric === 'revenue' ? 'Revenue' + (currency ? ' in ' + currency : '') : card(metric)[1];
    $('chart-caption').textContent = name + ' · highest ' + show(max) + (min < 0 ? ' · lowest ' + show(min) : '');
    var axis = $('chart-axis');
    axis.textContent = '';
    if (rows.length) {
      axis.appendChild(el('span', { text: when(rows[0].date) }));
      axis.appendChild(el('span', { text: when(rows[rows.length - 1].date) }));
    }
  }

  // A bucket's label: the day, or the day and hour ("2026-12-07 14:00").
  function when(date) {
    return date.length > 10 ? date.slice(0, 10) + ' ' + date.slice(11, 16) : date;
  }

  // A metric's card as shown now: [metric, label, format] (a goal's labels
  // under a goal filter).
  function card(metric) {
    var cards = goalFilters().length ? GOAL_CARDS.concat(CARDS) : CARDS;
    return cards.filter(function (x) { return x[0] === metric; })[0] || [metric, metric, 'count'];
  }

  // The funnel of the steps in the address, with the view's visit filters
  // (an event filter has no meaning for a whole funnel: left out, said so).
  var shownSteps = null;
  function renderFunnel(current) {
    var body = $('funnel-body');
    // The box shows the address's steps when they change (a link, Back),
    // not over what is being typed there.
    var steps = view.steps.join('\n');
    if (steps !== shownSteps) {
      $('steps').value = steps;
      shownSteps = steps;
    }
    if (view.steps.length < 2) {
      body.textContent = '';
      if (view.steps.length) body.appendChild(el('p', { class: 'empty', text: 'A funnel needs at least two steps.' }));
      return;
    }
    var visit = view.filters.filter(function (f) { return !/^\s*(page|hostname|event:)/.test(f); });
    var q = Object.assign({ site: view.site, filter: visit, step: view.steps }, period());
    // The last table stays until the new one is here (no flash on the
    // realtime refresh).
    if (!body.querySelector('table')) {
      body.textContent = '';
      body.appendChild(el('p', { class: 'empty', text: 'Loading…' }));
    }
    api('api/v1/stats/funnel', q).then(function (result) {
      if (!current()) return;
      body.textContent = '';
      if (visit.length < view.filters.length) {
        body.appendChild(el('p', { class: 'empty', text: 'Page and goal filters do not apply to the funnel: its steps say what visits did.' }));
      }
      var first = (result.steps[0] || {}).visitors || 0;
      var head = el('tr', {}, ['Step', 'Visitors', 'Conversion', 'From previous', 'Dropoff'].map(function (t) { return el('th', { text: t }); }));
      var tbody = el('tbody');
      result.steps.forEach(function (s) {
        var bar = el('span', { class: 'bar' });
        bar.style.width = (first > 0 ? Math.round(100 * s.visitors / first) : 0) + '%';
        tbody.appendChild(el('tr', {}, [
          el('td', { class: 'v', title: s.step }, [bar, el('span', { class: 'blank', text: s.step })]),
          el('td', { text: format(s.visitors, 'count') }),
          el('td', { text: format(s.conversion_rate, 'percent') }),
          el('td', { text: format(s.conversion_rate_step, 'percent') }),
          el('td', { text: format(s.dropoff, 'count') }),
        ]));
      });
      body.appendChild(el('table', {}, [el('thead', {}, [head]), tbody]));
    }).catch(function (e) {
      if (!current()) return;
      body.textContent = '';
      body.appendChild(el('p', { class: 'empty', text: 'Could not load: ' + e.message }));
    });
  }

  // The period's raw events as the collector's CSV (admin tokens; a share
  // token's 403 is said, not hidden).
  $('export').addEventListener('click', function () {
    var q = new URLSearchParams();
    var p = common();
    Object.keys(p).forEach(function (k) {
      if (Array.isArray(p[k])) p[k].forEach(function (v) { q.append(k, v); });
      else if (p[k] !== undefined && p[k] !== '') q.set(k, p[k]);
    });
    busy(1);
    fetch('api/v1/export?' + q.toString(), { headers: { Authorization: 'Bearer ' + token } }).then(function (r) {
      if (!r.ok) return r.json().catch(function () { return {}; }).then(function (b) { throw new Error(b.error || ('HTTP ' + r.status)); });
      var name = /filename="([^"]+)"/.exec(r.headers.get('Content-Disposition') || '');
      return r.blob().then(function (blob) {
        var a = el('a', { href: URL.createObjectURL(blob), download: name ? name[1] : 'events.csv' });
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
      });
    }).catch(function (e) { showError('Export: ' + e.message); })
      .then(function () { busy(-1); });
  });

  $('funnel-form').addEventListener('submit', function (e) {
    e.preventDefault();
    view.steps = $('steps').value.split('\n').map(function (s) { return s.trim(); }).filter(Boolean);
    $('steps').blur();
    refresh(true);
  });

  function renderPanels(current) {
    var box = $('panels');
    box.textContent = '';
    PANELS.forEach(function (panel) {
      var section = el('section', { class: 'panel', 'data-panel': panel[0], 'aria-label': panel[0] });
      box.appendChild(section);
      loadPanel(section, panel, current);
    });
  }

  // One panel: its tabs and its table; a tab or "more" reloads this panel
  // only, and an error stays in it.
  function loadPanel(section, panel, current) {
    var name = panel[0], choices = panel[1].slice();
    if (keys[name]) choices.push([keys[name], 'event:props:' + keys[name], 'visitors,events']);
    var chosen = tabs[name] || 0;
    var limit = limits[name] || 10;
    section.textContent = '';
    var tabBar = el('div', { class: 'tabs', role: 'tablist' });
    choices.forEach(function (c, i) {
      tabBar.appendChild(el('button', {
        type: 'button', role: 'tab', 'aria-selected': String(i === chosen), text: c[0],
        onclick: function () {
          tabs[name] = i; limits[name] = 10;
          // Kept in the address (a reload or a bookmark shows it), without
          // an entry of its own in the history.
          writeAddress(false);
          loadPanel(section, panel, current);
        },
      }));
    });
    var body = el('div', { class: 'panel-body' }, [el('p', { class: 'empty', text: 'Loading…' })]);
    section.appendChild(tabBar);
    section.appendChild(body);
    var c = choices[chosen] || choices[0];
    // With a goal filter, pages count its events (where it was reached).
    var metrics = c[1] === 'page' && goalFilters().length ? 'visitors,events' : c[2];
    // Engagement is not split by event names or properties.
    if (/time_on_page/.test(c[2]) && view.filters.some(function (f) { return /^event:/.test(f); })) {
      body.textContent = '';
      body.appendChild(el('p', { class: 'empty', text: 'Time on page and scroll depth are not split by goals or properties: remove that filter to see them.' }));
      return;
    }
    api('api/v1/stats/breakdown', Object.assign({ property: c[1], metrics: metrics, limit: limit }, common()))
      .then(function (result) {
        if (!current()) return;
        var more = function () {
          limits[name] = Math.min(limit * 10, 1000);
          loadPanel(section, panel, current);
        };
        // A key opens its values; any other value filters by it.
        var pick = c[1] !== 'event:props' ? addFilter : function (_, key) {
          keys[name] = key;
          tabs[name] = panel[1].length;
          limits[name] = 10;
          writeAddress(false);
          loadPanel(section, panel, current);
        };
        var csv = function () {
          return api('api/v1/stats/breakdown', Object.assign({ property: c[1], metrics: metrics, limit: 1000 }, common()))
            .then(function (all) { download(c[1], metrics.split(','), all); });
        };
        renderTable(body, c[1], metrics.split(','), result, more, pick, csv);
      })
      .catch(function (e) {
        if (!current()) return;
        body.textContent = '';
        body.appendChild(el('p', { class: 'empty', text: 'Could not load: ' + e.message }));
        // A key tab that fails is not opened again.
        if (c[1].indexOf('event:props:') === 0) { delete keys[name]; tabs[name] = 0; writeAddress(false); }
      });
  }

  // A CSV field: quoted when it must be, and never a formula a spreadsheet
  // would run (a value starting with = + - @, a tab or a CR gets a leading ').
  function csvField(v) {
    var t = v === null || v === undefined ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(t) && isNaN(Number(t))) t = "'" + t;
    return /[",\r\n]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
  }

  // One tab's rows (up to 1000) as a CSV file: the value as shown, then
  // each metric; revenue as one column per currency.
  function download(property, metrics, result) {
    var rows = result.results || [];
    var currencies = [];
    rows.forEach(function (r) {
      (r.revenue || []).forEach(function (x) { if (currencies.indexOf(x.currency) < 0) currencies.push(x.currency); });
    });
    currencies.sort();
    var columns = [];
    metrics.forEach(function (m) {
      if (m === 'revenue') currencies.forEach(function (c) { columns.push(['revenue', c]); });
      else columns.push([m]);
    });
    var lines = [[NAMES[property] || property].concat(columns.map(function (c) { return c.join(' '); }))];
    rows.forEach(function (r) {
      lines.push([label(property, r.value)].concat(columns.map(function (c) {
        if (c[0] !== 'revenue') return r[c[0]];
        var x = (r.revenue || []).filter(function (y) { return y.currency === c[1]; })[0];
        return x ? x.total : '';
      })));
    });
    var text = lines.map(function (l) { return l.map(csvField).join(','); }).join('\r\n') + '\r\n';
    var a = el('a', {
      href: URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' })),
      download: [view.site, property.replace(/[^A-Za-z0-9_-]+/g, '-'), shown ? shown.from + '_' + shown.to : view.period].join('_') + '.csv',
    });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
  }

  function renderTable(box, property, metrics, result, more, pick, csv) {
    box.textContent = '';
    var rows = result.results || [];
    if (!rows.length) { box.appendChild(el('p', { class: 'empty', text: 'Nothing in this period.' })); return; }
    var max = Math.max.apply(null, rows.map(function (r) { return r[metrics[0]] || 0; }));
    var head = el('tr', {}, [el('th', { text: '' })].concat(metrics.map(function (m) { return el('th', { text: HEADINGS[m] || m }); })));
    var table = el('table', {}, [el('thead', {}, [head])]);
    var tbody = el('tbody');
    rows.forEach(function (r) {
      var share = max > 0 ? Math.round(100 * (r[metrics[0]] || 0) / max) : 0;
      // Through the CSSOM: the page's CSP refuses style attributes.
      var bar = el('span', { class: 'bar' });
      bar.style.width = share + '%';
      var text = label(property, r.value);
      // An empty text (a property sent as "") cannot be a filter's value.
      var name = r.value === '' ? el('span', { class: 'blank', text: '(empty)' }) : el('button', {
          type: 'button', title: text + (property === 'event:props' ? ' (click for its values)' : ' (click to filter by it)'), text: text,
          onclick: function () { pick(property, r.value); },
        });
      var cells = [el('td', { class: 'v' }, [bar, name])];
      metrics.forEach(function (m) {
        if (m === 'revenue') {
          var list = (r.revenue || []).map(function (x) { return el('span', { text: money(x) }); });
          cells.push(el('td', { class: 'money' }, list.length ? list : [document.createTextNode('–')]));
        } else {
          var kind = m === 'time_on_page' ? 'duration' : m === 'bounce_rate' || m === 'conversion_rate' ? 'percent' : m === 'scroll_depth' ? 'share' : 'count';
          cells.push(el('td', { text: format(r[m], kind) }));
        }
      });
      tbody.appendChild(el('tr', {}, cells));
    });
    table.appendChild(tbody);
    box.appendChild(table);
    // Every visit unplaced: most likely no city database is configured.
    if ((property === 'region' || property === 'city') && rows.length === 1 && rows[0].value === '(none)') {
      box.appendChild(el('p', { class: 'empty', text: 'Regions and cities come from a city database: ' +
        'start the collector with --geoip and GeoLite2-City (or DB-IP City Lite); visits before that have none.' }));
    }
    var exportButton = el('button', {
      type: 'button', class: 'more', text: 'CSV', title: 'Download this table as CSV (up to 1000 rows)',
      onclick: function () { csv().catch(function (e) { showError(e.message); }); },
    });
    box.appendChild(el('p', { class: 'empty' }, result.total > rows.length ? [
      document.createTextNode('Top ' + rows.length + ' of ' + numbers.format(result.total) + ' '),
      rows.length < 1000 ? el('button', { type: 'button', class: 'more', text: 'Show more', onclick: more }) : null,
      exportButton,
    ] : [exportButton]));
  }

  $('site').addEventListener('change', function () {
    view.site = $('site').value;
    view.filters = [];
    keys = {};
    view.date = '';
    writeAddress(true);
    start();
  });
  $('period').addEventListener('change', function () {
    var p = $('period').value;
    if (p === 'custom') {
      // Start from the days shown, so the fields are never empty.
      view.from = (shown && shown.from) || addDays(today(), -29);
      view.to = (shown && shown.to) || today();
      $('from').value = view.from;
      $('to').value = view.to;
    }
    view.period = p;
    view.date = '';
    refresh(true);
  });
  $('custom').addEventListener('submit', function (e) {
    e.preventDefault();
    var from = $('from').value, to = $('to').value;
    if (!DAY.test(from) || !DAY.test(to)) return;
    // Either order means the same days.
    view.from = from < to ? from : to;
    view.to = from < to ? to : from;
    refresh(true);
  });
  $('prev').addEventListener('click', function () { move(-1); });
  $('next').addEventListener('click', function () { move(1); });
  addEventListener('hashchange', start);
  // Back and forward: the view of that history entry.
  addEventListener('popstate', start);
  // The visitor count, and in realtime the whole board, every 30 s.
  setInterval(function () {
    if (!token || !view.site || document.hidden || $('board').hidden) return;
    if (view.period === 'realtime') refresh();
    else realtime();
  }, 30000);
  start();
})();
