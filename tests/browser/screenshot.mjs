// The README's picture of the docs site: a model's page with one column's lineage shown.
//
//   node screenshot.mjs <site_dir> <out.png> [node_id] [column]
//
// Defaults: the first model named `fact_sales`, column `net_amount`.
import { launch, siteUrl } from './site.mjs';

const [dir, out, wantedId, column = 'net_amount'] = process.argv.slice(2);
if (!out) {
  console.error('usage: node screenshot.mjs <site_dir> <out.png> [node_id] [column]');
  process.exit(2);
}
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1250 }, deviceScaleFactor: 1 });
  await page.goto(siteUrl(dir));
  await page.waitForFunction(() => window.STRATA_READY !== undefined);
  const id = wantedId || await page.evaluate(() =>
    Object.keys(window.STRATA_DOCS.nodes).find(k => k.startsWith('model.') && k.endsWith('.fact_sales')));
  await page.evaluate(([id, column]) => { location.hash = `#!/node/${id}/col/${column}`; }, [id, column]);
  await page.waitForSelector(`[data-column="${column}"]`);
  // The page scrolls to the column; the picture starts at the top, with the graph.
  await page.evaluate(() => { window.scrollTo(0, 0); document.querySelectorAll('main, .main, #main').forEach(e => { e.scrollTop = 0; }); });
  await page.waitForTimeout(300);
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
}
