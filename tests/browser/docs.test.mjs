// Checks the generated docs site in headless Chromium, the way a reader uses it: search, a
// model's page, its graph and a column's lineage. Expected ids come from the page's own
// window.STRATA_DOCS, so it runs on any project that has a `fact_sales`-like model.
//
//   node docs.test.mjs <site_dir> [column]
//
// <site_dir> holds index.html, style.css, app.js and docs-data.js (or only docs-data.js: see
// site.mjs). The model and column default to `fact_sales` and `net_amount`; STRATA_DOCS_MODEL
// and STRATA_DOCS_COLUMN override them. Prints one line per check, exits 1 on any failure.
import { launch, siteUrl } from './site.mjs';

const url = siteUrl(process.argv[2]);
const modelName = process.env.STRATA_DOCS_MODEL || 'fact_sales';
const columnName = process.argv[3] || process.env.STRATA_DOCS_COLUMN || 'net_amount';
const timeout = 10_000;

let passed = 0, failed = 0, skipped = 0;
function check(name, ok, detail = '') {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${!ok && detail ? `: ${detail}` : ''}`);
  return ok;
}
function skip(name, reason) {
  skipped++;
  console.log(`skip ${name}: ${reason}`);
}
const sameSet = (a, b) => a.length === b.length && a.every(x => b.includes(x));
const attr = value => JSON.stringify(String(value)); // a quoted CSS attribute value

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', e => errors.push(e.message));
  page.on('requestfailed', r => errors.push(`request failed: ${r.url()}`));
  page.on('dialog', d => { errors.push(`unexpected dialog: ${d.message()}`); d.dismiss(); });

  await page.goto(url);
  const ready = await page.waitForFunction(() => window.STRATA_READY !== undefined, null, { timeout }).then(() => true, () => false);
  check('the site loads and draws its graph', ready, 'window.STRATA_READY was never set');
  check('no console errors while loading', errors.length === 0, errors.join(' | '));
  if (!ready) throw new Error('cannot go on without the site');

  const model = await page.evaluate(name => {
    const nodes = window.STRATA_DOCS.nodes;
    const id = Object.keys(nodes).find(k => nodes[k].resource_type === 'model' && nodes[k].name === name);
    if (!id) return null;
    const n = nodes[id];
    const graphable = k => nodes[k] && !['test', 'unit_test'].includes(nodes[k].resource_type);
    const ancestors = new Set([id]);
    for (const k of ancestors) for (const p of nodes[k].parents || []) if (graphable(p)) ancestors.add(p);
    const children = Object.keys(nodes).filter(k => graphable(k) && (nodes[k].parents || []).includes(id));
    const stopped = (n.columns || []).find(c => c.lineage && ['partial', 'untraced'].includes(c.lineage.status) && c.lineage.note);
    return {
      id, parents: n.parents || [], tests: n.tests || [], ancestors: [...ancestors], children: [id, ...children],
      columns: (n.columns || []).map(c => ({ name: c.name, tests: c.tests || [] })),
      stopped: stopped && { name: stopped.name, status: stopped.lineage.status, note: stopped.lineage.note },
    };
  }, modelName);
  if (!check(`window.STRATA_DOCS has a model named \`${modelName}\``, !!model)) throw new Error('no model to check');

  // Search.
  await page.fill('[data-testid="search-input"]', modelName);
  const result = page.locator(`[data-testid="search-result"][data-result=${attr(model.id)}]`);
  const found = await result.waitFor({ timeout }).then(() => true, () => false);
  check(`searching \`${modelName}\` lists \`${model.id}\``, found);
  const first = await page.locator('[data-testid="search-result"]').first().getAttribute('data-result').catch(() => null);
  check('the exact name is the first result', first === model.id, `first result is \`${first}\``);
  if (found) await result.click();
  else await page.evaluate(id => { location.hash = '#!/node/' + encodeURIComponent(id); }, model.id);

  // The model's page.
  const opened = await page.locator(`[data-testid="node-page"][data-node-id=${attr(model.id)}]`).waitFor({ timeout }).then(() => true, () => false);
  if (!check(`opening the result shows the page of \`${model.id}\``, opened)) throw new Error('no model page');
  const missingColumns = [];
  const missingColumnTests = [];
  for (const column of model.columns) {
    const row = page.locator(`[data-testid="columns"] [data-column=${attr(column.name)}]`);
    if (await row.count() !== 1) { missingColumns.push(column.name); continue; }
    for (const test of column.tests) if (await row.locator(`[data-link=${attr(test)}]`).count() !== 1) missingColumnTests.push(`${column.name}: ${test}`);
  }
  check(`the page lists its ${model.columns.length} columns`, model.columns.length > 0 && !missingColumns.length,
    model.columns.length ? `missing rows: ${missingColumns.join(', ')}` : 'the model has no columns in docs-data.js');
  check('each column links its tests', !missingColumnTests.length, `missing: ${missingColumnTests.join(', ')}`);
  const missingTests = [];
  for (const test of model.tests) if (await page.locator(`[data-testid="node-tests"] [data-link=${attr(test)}]`).count() !== 1) missingTests.push(test);
  check(`the page links its ${model.tests.length} data tests`, model.tests.length > 0 && !missingTests.length,
    model.tests.length ? `missing: ${missingTests.join(', ')}` : 'the model has no tests in docs-data.js');

  // The graph shows the parents.
  const missingParents = [];
  for (const parent of model.parents) if (await page.locator(`[data-testid="graph"] [data-node=${attr(parent)}]`).count() !== 1) missingParents.push(parent);
  check(`the graph shows its ${model.parents.length} parents`, model.parents.length > 0 && !missingParents.length,
    model.parents.length ? `not drawn: ${missingParents.join(', ')}` : 'the model has no parents in docs-data.js');
  check('the graph marks the model itself', await page.locator(`[data-testid="graph"] .focus[data-node=${attr(model.id)}]`).count() === 1);

  // Column lineage.
  const row = page.locator(`[data-testid="columns"] [data-column=${attr(columnName)}]`);
  if (!check(`the page has column \`${columnName}\``, await row.count() === 1)) throw new Error('no column to trace');
  await row.locator('td').first().click();
  const traced = await page.locator('[data-upstream]').first().waitFor({ timeout }).then(() => true, () => false);
  check(`clicking \`${columnName}\` lists upstream columns`, traced);
  const upstream = await page.$$eval('[data-upstream]', els => els.map(e => {
    const n = window.STRATA_DOCS.nodes[e.dataset.upstreamNode];
    return { node: e.dataset.upstreamNode, column: e.dataset.upstreamColumn, name: n ? n.name : null };
  }));
  const staging = upstream.filter(u => u.name && u.name.startsWith('stg_'));
  check(`the upstream of \`${columnName}\` reaches a staging (\`stg_\`) model`, staging.length > 0,
    `upstream: ${upstream.map(u => `${u.name ?? u.node}.${u.column}`).join(', ') || 'none'}`);
  const notHighlighted = [];
  for (const u of upstream) {
    if (await page.locator(`[data-testid="graph"] [data-node=${attr(u.node)}].highlighted`).count() !== 1) notHighlighted.push(u.node);
  }
  check('the graph highlights every node on that path', upstream.length > 0 && !notHighlighted.length, `not highlighted: ${[...new Set(notHighlighted)].join(', ')}`);
  if (staging.length) {
    const label = await page.locator(`[data-testid="graph"] [data-node=${attr(staging[0].node)}] .sub`).textContent();
    check(`the graph names the column on \`${staging[0].name}\``, label.includes(staging[0].column), `its label reads \`${label}\``);
  }

  // A partial or untraced column shows why instead of a guess.
  if (model.stopped) {
    await page.locator(`[data-testid="columns"] [data-column=${attr(model.stopped.name)}] td`).first().click();
    const note = await page.locator('[data-testid="lineage-note"]').textContent({ timeout }).catch(() => '');
    check(`the ${model.stopped.status} column \`${model.stopped.name}\` shows its note`, note.includes(model.stopped.note), `the note reads \`${note}\``);
  } else skip('a partial column shows its note', `\`${modelName}\` has no partial or untraced column with a note`);

  // Selectors in the graph's input.
  const drawn = async expression => {
    await page.fill('[data-testid="graph-selector"]', expression);
    await page.press('[data-testid="graph-selector"]', 'Enter');
    return page.$$eval('[data-testid="graph"] [data-node]', els => els.map(e => e.dataset.node));
  };
  const ancestorsDrawn = await drawn(`+${modelName}`);
  if (model.ancestors.length <= 600) check(`\`+${modelName}\` draws the model and all its ancestors`, sameSet(ancestorsDrawn, model.ancestors), `drew ${ancestorsDrawn.length} of ${model.ancestors.length}`);
  else skip(`\`+${modelName}\` draws all ancestors`, `${model.ancestors.length} ancestors are more than one graph draws`);
  const childrenDrawn = await drawn(`${modelName}+1`);
  check(`\`${modelName}+1\` draws the model and its children`, sameSet(childrenDrawn, model.children), `drew ${childrenDrawn.join(', ')}`);

  // A data test's page leads back to the model.
  if (model.tests.length) {
    await page.locator(`[data-testid="node-tests"] [data-link=${attr(model.tests[0])}]`).click();
    const back = await page.locator(`[data-testid="node-page"][data-node-id=${attr(model.tests[0])}] [data-link=${attr(model.id)}]`).first()
      .waitFor({ timeout }).then(() => true, () => false);
    check(`the page of \`${model.tests[0]}\` links back to the model`, back);
  }
  check('no console errors at the end', errors.length === 0, errors.join(' | '));
} catch (error) {
  check('the run finished', false, error.message);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
