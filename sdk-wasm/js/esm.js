// The npm entry (ES module). Preceded by `import * as tmGlue from './glue.js'`
// and js/host.js when xtask builds npm/dist/esm/index.js.
//
// The wasm is found with `new URL('./tallymark_bg.wasm', import.meta.url)`,
// which Vite and webpack 5 both turn into an emitted asset with no plugin;
// plain ESM in a browser resolves it next to this file.
var tmReady;

export function init(options) {
  try {
    if (tmReady) return tmReady;
    if (typeof window == 'undefined') return Promise.resolve(false);
    var o = options || {};
    tmReady = tmGlue.default({ module_or_path: new URL('./tallymark_bg.wasm', import.meta.url) })
      .then(function () {
        return tmStart(tmGlue, {
          site: o.site,
          endpoint: o.endpoint || '/api/event',
          hash: o.hashRouting,
          outbound: o.outboundLinks,
          downloads: o.fileDownloads,
          notFound: o.notFound,
          allowLocalhost: o.allowLocalhost,
        });
      })
      .catch(function () { return false; });
    return tmReady;
  } catch (e) {
    return Promise.resolve(false);
  }
}

export function track(name, props, options) {
  tmTrack(name, props, options);
}

export function pageview() {
  tmPage();
}
