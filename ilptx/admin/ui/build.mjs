// Build the dashboard once into static/ (committed and shipped in the ilptx package):
// src/app.js with preact, htm and uPlot bundled by esbuild into static/dashboard.js, src/app.css
// with uPlot's stylesheet into static/dashboard.css, src/index.html and src/favicon.svg copied, and
// the bundled libraries' licences into static/THIRD-PARTY-LICENSES.txt. Run ./build.sh (npm ci first).
// `node build.mjs DIR` writes to DIR instead (tests/integration/test_dashboard_build.py compares).
import { build } from 'esbuild'
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'

const out = process.argv[2] || 'static'
rmSync(out, { recursive: true, force: true })
mkdirSync(out)
const common = { bundle: true, minify: true, legalComments: 'none', logLevel: 'info' }
await build({ ...common, entryPoints: ['src/app.js'], outfile: `${out}/dashboard.js`, format: 'esm', target: 'es2020' })
await build({ ...common, entryPoints: ['src/app.css'], outfile: `${out}/dashboard.css` })
for (const name of ['index.html', 'favicon.svg']) copyFileSync(`src/${name}`, `${out}/${name}`)
const licences = ['preact', 'htm', 'uplot'].map((name) => {
  const { version, license } = JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8'))
  return `${name} ${version} (${license})\n\n${readFileSync(`node_modules/${name}/LICENSE`, 'utf8').trim()}\n`
})
writeFileSync(`${out}/THIRD-PARTY-LICENSES.txt`, licences.join('\n' + '-'.repeat(72) + '\n\n'))
