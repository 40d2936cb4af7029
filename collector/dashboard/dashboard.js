// The Tallymark dashboard: one page over the stats API (docs/stats-api.md),
// no framework, no build step, no third-party request, no storage. The
// token lives in the address after `#token=` (never sent to a server but as
// the Authorization header); the view (site, period, filters, metric) in its
// query string, so a reload or a bookmark shows the same view.
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
    ]],
    ['Countries', [['Country', 'country', 'visitors']]],
    ['Devices', [
      ['Device', 'device', 'visitors'],
      ['Browser', 'browser', 'visitors'],
      ['OS', 'os', 'visitors'],
    ]],
    ['Goals', [['Custom events', 'event:name', 'visitors,events,revenue']]],
  ];
  var HEADINGS = {
    visitors: 'Visitors', visits: 'Visits', pageviews: 'Views', events: 'Events',
    bounce_rate: 'Bounce', revenue: 'Revenue',
  };

  var token = '';
  // `date`: the period's anchor day (YYYY-MM-DD), empty for today.
  var view = { site: '', period: '30d', date: '', metric: 'visitors', filters: [] };
  var timezone = 'UTC';
  // The resolved days of the period shown: {from, to}.
  var shown = null;
  var tabs = {};
  var generation = 0;

  function readAddress() {
    var hash = new URLSearchParams(location.hash.slice(1));
    token = hash.get('token') || '';
    var q = new URLSearchParams(location.search);
    view.site = q.get('site') || '';
    view.period = q.get('period') || '30d';
    view.date = /^\d{4}-\d{2}-\d{2}$/.test(q.get('date') || '') ? q.get('date') : '';
    view.metric = q.get('metric') || 'visitors';
    view.filters = q.getAll('filter');
  }

  function writeAddress() {
    var q = new URLSearchParams();
    if (view.site) q.set('site', view.site);
    q.set('period', view.period);
    if (view.date) q.set('date', view.date);
    if (view.metric !== 'visitors') q.set('metric', view.metric);
    view.filters.forEach(function (f) { q.append('filter', f); });
    history.replaceState(null, '', '?' + q.toString() + location.hash);
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

  // Requests in flight: the board is `aria-busy` until all have answered.
  var pending = 0;
  function busy(delta) {
    pending += delta;
    $('board').setAttribute('aria-busy', String(pending > 0));
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

  var numbers = new Intl.NumberFormat('en');
  function format(value, kind) {
    if (value === undefined || value === null) return '–';
    if (kind === 'percent') return value.toFixed(1) + '%';
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
  function label(property, value) {
    if (property === 'country' && regions && /^[A-Z]{2}$/.test(value)) {
      try { return regions.of(value) + ' (' + value + ')'; } catch (e) { return value; }
    }
    return value;
  }

  // --- login -------------------------------------------------------------

  function showLogin(message) {
    $('login').hidden = false;
    $('board').hidden = true;
    ['site', 'period', 'nav', 'realtime'].forEach(function (id) { $(id).hidden = true; });
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
    if (!token) { showLogin(''); return; }
    api('/api/v1/sites').then(function (body) {
      var sites = body.sites || [];
      if (!sites.length) {
        showLogin('No sites yet: register one with `tallymark site add example.com`.');
        $('login').hidden = true;
        return;
      }
      var select = $('site');
      select.textContent = '';
      sites.forEach(function (s) { select.appendChild(el('option', { value: s.domain, text: s.domain })); });
      if (!sites.some(function (s) { return s.domain === view.site; })) view.site = sites[0].domain;
      select.value = view.site;
      select.hidden = false;
      $('period').value = view.period;
      if ($('period').value !== view.period) { view.period = '30d'; $('period').value = '30d'; }
      $('period').hidden = false;
      $('nav').hidden = false;
      timezone = sites.filter(function (s) { return s.domain === view.site; })[0].timezone;
      $('login').hidden = true;
      $('board').hidden = false;
      showVolume(sites.filter(function (s) { return s.domain === view.site; })[0]);
      refresh();
    }).catch(function (e) {
      showLogin(e.status === 401 ? 'That token is not known to this collector.' : e.message);
    });
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

  function common() {
    return { site: view.site, period: view.period, date: view.date, filter: view.filters };
  }

  // Days as YYYY-MM-DD strings, moved in UTC (no DST in whole days).
  function addDays(day, n) {
    var d = new Date(day + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  function today() {
    try {
      return new Intl.DateTimeFormat('en-CA', { timeZone: timezone }).format(new Date());
    } catch (e) {
      return new Date().toISOString().slice(0, 10);
    }
  }

  var LENGTH = { day: 1, '7d': 7, '30d': 30 };

  // Previous: the period that ends the day before this one starts. Next:
  // the one after, or today's when that would reach past today.
  function move(step) {
    if (!shown) return;
    var anchor = step < 0 ? addDays(shown.from, -1)
      : addDays(shown.to, LENGTH[view.period] || 1);
    view.date = anchor >= today() ? '' : anchor;
    refresh();
  }

  function showRange(period) {
    shown = period && period.from ? { from: period.from, to: period.to } : null;
    $('range').textContent = !shown ? '' : shown.from === shown.to ? shown.from : shown.from + ' – ' + shown.to;
    $('next').disabled = !view.date;
  }

  function refresh() {
    writeAddress();
    showError('');
    var g = ++generation;
    var current = function () { return g === generation; };
    renderFilters();
    var fail = function (e) { if (current()) showError(e.message); };
    var p = common();
    api('/api/v1/stats/aggregate', Object.assign({ compare: 'previous_period' }, p))
      .then(function (body) { if (current()) { showRange(body.period); renderCards(body); } }).catch(fail);
    var chartMetric = view.metric === 'revenue' ? 'revenue' : view.metric;
    api('/api/v1/stats/timeseries', Object.assign({ metrics: chartMetric }, p))
      .then(function (body) { if (current()) renderChart(body); }).catch(fail);
    realtime();
    renderPanels(current, fail);
  }

  function realtime() {
    var site = view.site;
    api('/api/v1/stats/realtime', { site: site, filter: view.filters }).then(function (body) {
      if (site !== view.site) return;
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
      var text = m ? m[1] + (m[2] === '==' ? ' is ' : m[2] === '!=' ? ' is not ' : ' contains ') + m[3] : f;
      box.appendChild(el('button', {
        type: 'button', title: 'Remove this filter', text: text + ' ×',
        onclick: function () { view.filters.splice(i, 1); refresh(); },
      }));
    });
  }

  function addFilter(property, value) {
    var f = property + '==' + value;
    if (view.filters.indexOf(f) < 0) view.filters.push(f);
    refresh();
  }

  function renderCards(body) {
    var box = $('cards');
    box.textContent = '';
    var r = body.results || {}, change = (body.comparison && body.comparison.change) || {};
    CARDS.forEach(function (c) {
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
        onclick: function () { view.metric = c[0]; refresh(); },
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
        onclick: function () { view.metric = 'revenue'; refresh(); },
      }, [el('span', { class: 'label', text: 'Revenue' })].concat(revenue.map(function (x) {
        return el('span', { class: 'value', text: money(x) });
      }))));
    }
  }

  // The chart's value of a bucket: the metric, or for revenue the total in
  // the first currency (the legend says which).
  function chartValue(row, metric, currency) {
    if (metric !== 'revenue') return row[metric] || 0;
    var r = (row.revenue || []).filter(function (x) { return x.currency === currency; })[0];
    return r ? r.total : 0;
  }

  function renderChart(body) {
    var chart = $('chart');
    chart.textContent = '';
    var rows = body.results || [], metric = view.metric, currency = '';
    if (metric === 'revenue') {
      rows.some(function (row) { if (row.revenue && row.revenue.length) { currency = row.revenue[0].currency; return true; } return false; });
    }
    var W = 1000, H = 220, top = 18, bottom = 22, left = 4;
    chart.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    var values = rows.map(function (r) { return chartValue(r, metric, currency); });
    var max = Math.max.apply(null, [0].concat(values));
    var n = Math.max(rows.length, 1), step = (W - left) / n, gap = Math.min(2, step * 0.2);
    rows.forEach(function (row, i) {
      var h = max > 0 ? (H - top - bottom) * Math.max(values[i], 0) / max : 0;
      var rect = svg('rect', { x: left + i * step + gap / 2, y: H - bottom - h, width: Math.max(step - gap, 0.5), height: h, 'data-date': row.date });
      var title = svg('title');
      title.textContent = row.date + ': ' + (metric === 'revenue' && currency ? money({ currency: currency, total: values[i] }) : format(values[i], metricKind(metric)));
      rect.appendChild(title);
      chart.appendChild(rect);
    });
    var caption = (metric === 'revenue' ? 'Revenue' + (currency ? ' (' + currency + ')' : '') : cardLabel(metric)) +
      ' · max ' + (metric === 'revenue' && currency ? money({ currency: currency, total: max }) : format(max, metricKind(metric)));
    var t = svg('text', { x: left, y: 12 });
    t.textContent = caption;
    chart.appendChild(t);
    if (rows.length) {
      var first = svg('text', { x: left, y: H - 6 });
      first.textContent = rows[0].date.slice(0, 16);
      var last = svg('text', { x: W - 4, y: H - 6, 'text-anchor': 'end' });
      last.textContent = rows[rows.length - 1].date.slice(0, 16);
      chart.appendChild(first);
      chart.appendChild(last);
    }
  }

  function metricKind(metric) {
    var c = CARDS.filter(function (x) { return x[0] === metric; })[0];
    return c ? c[2] : 'count';
  }

  function cardLabel(metric) {
    var c = CARDS.filter(function (x) { return x[0] === metric; })[0];
    return c ? c[1] : metric;
  }

  function renderPanels(current, fail) {
    var box = $('panels');
    box.textContent = '';
    PANELS.forEach(function (panel) {
      var name = panel[0], choices = panel[1];
      var chosen = tabs[name] || 0;
      var body = el('div', { class: 'panel-body' }, [el('p', { class: 'empty', text: 'Loading…' })]);
      var tabBar = el('div', { class: 'tabs', role: 'tablist' });
      choices.forEach(function (c, i) {
        tabBar.appendChild(el('button', {
          type: 'button', role: 'tab', 'aria-selected': String(i === chosen), text: c[0],
          onclick: function () { tabs[name] = i; refresh(); },
        }));
      });
      box.appendChild(el('section', { class: 'panel', 'data-panel': name, 'aria-label': name }, [tabBar, body]));
      var c = choices[chosen];
      api('/api/v1/stats/breakdown', Object.assign({ property: c[1], metrics: c[2], limit: 10 }, common()))
        .then(function (result) { if (current()) renderTable(body, c[1], c[2].split(','), result); })
        .catch(fail);
    });
  }

  function renderTable(box, property, metrics, result) {
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
      var cells = [el('td', { class: 'v' }, [
        bar,
        el('button', {
          type: 'button', title: 'Filter by this value', text: label(property, r.value),
          onclick: function () { addFilter(property, r.value); },
        }),
      ])];
      metrics.forEach(function (m) {
        var text = m === 'revenue' ? (r.revenue || []).map(money).join(', ') || '–'
          : format(r[m], m === 'bounce_rate' ? 'percent' : 'count');
        cells.push(el('td', { text: text }));
      });
      tbody.appendChild(el('tr', {}, cells));
    });
    table.appendChild(tbody);
    box.appendChild(table);
    if (result.total > rows.length) {
      box.appendChild(el('p', { class: 'empty', text: 'Top ' + rows.length + ' of ' + numbers.format(result.total) }));
    }
  }

  $('site').addEventListener('change', function () {
    view.site = $('site').value;
    view.filters = [];
    view.date = '';
    writeAddress();
    start();
  });
  $('period').addEventListener('change', function () { view.period = $('period').value; refresh(); });
  $('prev').addEventListener('click', function () { move(-1); });
  $('next').addEventListener('click', function () { move(1); });
  addEventListener('hashchange', start);
  setInterval(function () { if (token && view.site && !document.hidden) realtime(); }, 30000);
  start();
})();
