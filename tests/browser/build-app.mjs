// Builds a test app (tests/apps/vite or tests/apps/webpack, copied to a temp
// dir with the packed tallymark tarball installed) with the bundler's Node
// API and default settings: no plugins, no loaders, no wasm options.
// usage: node build-app.mjs vite|webpack APP_DIR   → APP_DIR/dist
import fs from 'node:fs';
import path from 'node:path';

const [kind, dir] = process.argv.slice(2);
const out = path.join(dir, 'dist');

if (kind === 'vite') {
  const { build } = await import('vite');
  await build({ root: dir, configFile: false, logLevel: 'warn', build: { outDir: out, emptyOutDir: true } });
} else if (kind === 'webpack') {
  const { default: webpack } = await import('webpack');
  const stats = await new Promise((resolve, reject) => {
    webpack({
      mode: 'production',
      context: dir,
      entry: './main.js',
      output: { path: out, filename: 'main.js' },
    }, (err, stats) => (err ? reject(err) : resolve(stats)));
  });
  if (stats.hasErrors()) throw new Error(stats.toString('errors-only'));
  fs.copyFileSync(path.join(dir, 'index.html'), path.join(out, 'index.html'));
} else {
  throw new Error(`unknown bundler ${kind}`);
}
console.log(JSON.stringify({ files: fs.readdirSync(out, { recursive: true }).map(String).sort() }));
