// Times the docs site in headless Chromium: how long until the graph is interactive, and how long
// a search takes. Prints one JSON object on stdout.
//
//   node perf.mjs <site_dir>
//
// open_ms: navigation start until the app sets window.STRATA_READY (first graph drawn, handlers
// attached). search_ms: the slowest of a few queries, as the app measures its own search and
// render (window.STRATA_LAST_SEARCH_MS); search_frame_ms adds the wait for the next frame.
// node_page_ms: opening the page of the last model (`fact_sales` in gen-large's project).
import { launch, siteUrl } from './site.mjs';

const url = siteUrl(process.argv[2]);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on('pageerror', e => errors.push(e.message));
  await page.goto(url, { timeout: 60_000 });
  await page.waitForFunction(() => window.STRATA_READY !== undefined, null, { timeout: 60_000 });
  const openMs = await page.evaluate(() => window.STRATA_READY);
  const nodes = await page.evaluate(() => Object.keys(window.STRATA_DOCS.nodes).length);

  const searches = {};
  for (const query of ['fact', 'stg_sales', 'net_amount', 'gold', 'a', 'no_such_thing']) {
    searches[query] = await page.evaluate(q => new Promise(done => {
      const input = document.querySelector('[data-testid="search-input"]');
      input.focus();
      const t0 = performance.now();
      input.value = q;
      input.dispatchEvent(new Event('input', { bubbles: true }));
      requestAnimationFrame(() => done({ app_ms: window.STRATA_LAST_SEARCH_MS, frame_ms: performance.now() - t0 }));
    }), query);
  }
  const last = await page.evaluate(() => {
    const nodes = window.STRATA_DOCS.nodes;
    return Object.keys(nodes).filter(k => nodes[k].resource_type === 'model').pop();
  });
  const nodePageMs = await page.evaluate(id => new Promise(done => {
    const t0 = performance.now();
    location.hash = '#!/node/' + encodeURIComponent(id);
    requestAnimationFrame(() => done(performance.now() - t0));
  }), last);
  const round = n => Math.round(n * 10) / 10;
  console.log(JSON.stringify({
    open_ms: round(openMs),
    search_ms: round(Math.max(...Object.values(searches).map(s => s.app_ms))),
    search_frame_ms: round(Math.max(...Object.values(searches).map(s => s.frame_ms))),
    node_page_ms: round(nodePageMs),
    nodes,
    searches: Object.fromEntries(Object.entries(searches).map(([q, s]) => [q, round(s.app_ms)])),
    page_errors: errors,
  }));
} finally {
  await browser.close();
}
