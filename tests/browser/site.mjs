// What docs.test.mjs and perf.mjs share: finding the site to open and launching Chromium.
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const siteSources = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/docs/site');

// The `file://` URL of the site in `dir`: a generated site (index.html beside docs-data.js), or
// a fixture folder holding only docs-data.js, which is then put beside a copy of the site's
// sources from src/docs/site in a temporary folder.
export function siteUrl(dir) {
  if (!dir) {
    console.error('usage: node <script> <site_dir>   (a folder with index.html, or a fixture with docs-data.js)');
    process.exit(2);
  }
  dir = resolve(dir);
  if (!existsSync(join(dir, 'docs-data.js'))) {
    console.error(`error: no docs-data.js in \`${dir}\``);
    process.exit(2);
  }
  if (!existsSync(join(dir, 'index.html'))) {
    const site = mkdtempSync(join(tmpdir(), 'strata-docs-'));
    process.on('exit', () => rmSync(site, { recursive: true, force: true }));
    for (const file of readdirSync(siteSources)) copyFileSync(join(siteSources, file), join(site, file));
    copyFileSync(join(dir, 'docs-data.js'), join(site, 'docs-data.js'));
    dir = site;
  }
  return pathToFileURL(join(dir, 'index.html')).href;
}

// Debian's Chromium (or `$CHROMIUM`), headless; playwright-core never downloads a browser here.
export async function launch() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    console.error(`error: no Chromium at \`${executablePath}\`\nhint: run tests/services.sh, or set CHROMIUM`);
    process.exit(2);
  }
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
}
