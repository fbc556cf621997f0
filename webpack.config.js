// Bundles the web app and the browser-test harness page into www/dist/ (scripts/build.sh).
//
//   www/app.js     + www/index.html   -> www/dist/index.html   (the web app)
//   www/harness.js + www/harness.html -> www/dist/harness.html (page for tests/browser/)
//   www/storage-harness.{js,html}     -> www/dist/storage-harness.html (storage.test.mjs)
//   www/embed.{js,html}               -> www/dist/embed.html (the player widget.js embeds)
//   www/static/{sw,widget}.js         -> www/dist/{sw,widget}.js (stable names, not hashed)
//
// The HTML files are templates: html-webpack-plugin injects the bundle's <script> tag,
// so they must not load app.js / harness.js themselves. `import ... from '../pkg/seedtab.js'`
// (wasm-pack --target bundler output) works through experiments.asyncWebAssembly.
// `import './style.css'` works too (experiments.css); other static files in www/ (css, images,
// icons, a service worker's .js under www/static/) are copied to www/dist/ as they are.
const fs = require('node:fs');
const path = require('node:path');
const HtmlWebpackPlugin = require('html-webpack-plugin');

const WWW = path.resolve(__dirname, 'www');
const DIST = path.join(WWW, 'dist');

// page name -> [entry script, html template]
const PAGES = {
  index: ['app.js', 'index.html'],
  harness: ['harness.js', 'harness.html'],
  'storage-harness': ['storage-harness.js', 'storage-harness.html'],
  // The embeddable player (issue 7); www/static/widget.js and www/static/sw.js, which it
  // needs at stable root URLs, are copied as they are by CopyStaticPlugin.
  embed: ['embed.js', 'embed.html'],
};

/** Copies www/*.{css,png,svg,ico,webmanifest,...} and www/static/** into the output, unchanged. */
class CopyStaticPlugin {
  apply(compiler) {
    const { RawSource } = compiler.webpack.sources;
    const exts = new Set(['.css', '.png', '.svg', '.ico', '.jpg', '.jpeg', '.gif', '.webp', '.webmanifest', '.json', '.txt', '.woff2']);
    compiler.hooks.thisCompilation.tap('CopyStaticPlugin', (compilation) => {
      compilation.hooks.processAssets.tap(
        { name: 'CopyStaticPlugin', stage: compiler.webpack.Compilation.PROCESS_ASSETS_STAGE_ADDITIONAL },
        () => {
          const files = [];
          for (const name of fs.readdirSync(WWW)) {
            const full = path.join(WWW, name);
            if (fs.statSync(full).isFile() && exts.has(path.extname(name).toLowerCase())) files.push([name, full]);
          }
          const walk = (dir, rel) => {
            for (const name of fs.readdirSync(dir)) {
              const full = path.join(dir, name);
              const relName = path.posix.join(rel, name);
              if (fs.statSync(full).isDirectory()) walk(full, relName);
              else files.push([relName, full]);
            }
          };
          const staticDir = path.join(WWW, 'static');
          if (fs.existsSync(staticDir)) walk(staticDir, '');
          for (const [name, full] of files) {
            compilation.fileDependencies.add(full);
            if (!compilation.getAsset(name)) compilation.emitAsset(name, new RawSource(fs.readFileSync(full)));
          }
        },
      );
    });
  }
}

module.exports = (env, argv) => {
  const mode = argv.mode || 'production';
  const entry = {};
  const plugins = [];
  for (const [name, [script, html]] of Object.entries(PAGES)) {
    const scriptPath = path.join(WWW, script);
    if (!fs.existsSync(scriptPath)) {
      // Only while the app is being written: say so loudly rather than fail the harness build.
      console.warn(`webpack.config.js: WARNING: www/${script} is missing; dist/${html} is not built`);
      continue;
    }
    entry[name] = scriptPath;
    plugins.push(new HtmlWebpackPlugin({
      template: path.join(WWW, html),
      filename: html,
      chunks: [name],
      scriptLoading: 'module',
      minify: false,
    }));
  }
  plugins.push(new CopyStaticPlugin());
  return {
    mode,
    context: __dirname,
    entry,
    target: 'web',
    output: {
      path: DIST,
      filename: '[name].[contenthash:8].js',
      chunkFilename: '[name].[contenthash:8].js',
      webassemblyModuleFilename: 'seedtab.[hash].wasm',
      publicPath: '',
      clean: true,
    },
    experiments: {
      asyncWebAssembly: true,
      css: true,
    },
    module: {
      rules: [
        // wasm-pack output is ES module code with a sibling .wasm.
        { test: /\.wasm$/, type: 'webassembly/async' },
      ],
    },
    // One runtime for both pages, so the wasm module is emitted (and cached) once.
    optimization: { runtimeChunk: 'single' },
    devtool: mode === 'production' ? 'source-map' : 'eval-cheap-module-source-map',
    performance: { hints: false },
    plugins,
    stats: 'errors-warnings',
  };
};
