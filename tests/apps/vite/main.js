// The whole integration: import, init, track. No bundler plugin; the
// package's `new URL('./tallymark_bg.wasm', import.meta.url)` is an asset.
import { init, track } from 'tallymark';

const endpoint = new URLSearchParams(location.search).get('api');
// `init` resolves to whether the beacon is on (false when the wasm could
// not load, on a server, …).
init({ site: 'localhost', endpoint, allowLocalhost: true }).then((on) => {
  track('App Ready', { bundler: 'vite', n: 1 });
  document.getElementById('status').textContent = on === true ? 'ready' : `off: ${on}`;
});
