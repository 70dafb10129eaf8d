// strata docs: the whole behaviour of the static site that `strata docs generate` writes.
//
// A classic script rather than an ES module, because Chromium refuses module scripts on file://
// pages. It reads `window.STRATA_DOCS` (set by docs-data.js), indexes it once in O(n), and
// renders pages on hash routes (`#!/node/<unique id>`), so the site works from file:// and from
// `strata docs serve` alike. It fetches nothing: no network, no CDN.
//
// Work at load stays linear in the node count and the DOM only ever holds what is on screen: one
// graph of at most MAX_DRAW nodes, at most MAX_RESULTS search results, and tree folders that are
// filled when opened. The browser tests read `window.STRATA_READY` (first graph drawn and its
// handlers attached) and `window.STRATA_LAST_SEARCH_MS`.
(function () {
  'use strict';

  const MAX_DRAW = 600; // nodes one graph draws; a larger selection asks to be narrowed
  const SMALL_PROJECT = 500; // up to this many nodes the home page draws the whole DAG
  const HOME_SAMPLE = 300; // larger projects: the home page draws a sample this big
  const MAX_RESULTS = 50;
  const MAX_LEAVES = 300; // tree entries shown per folder
  const NODE_W = 200, NODE_H = 42, GAP_X = 64, GAP_Y = 14, PITCH = NODE_H + GAP_Y;
  const TYPES = ['source', 'seed', 'snapshot', 'model', 'test', 'unit_test'];
  const LABELS = { source: 'Sources', seed: 'Seeds', snapshot: 'Snapshots', model: 'Models', test: 'Data tests', unit_test: 'Unit tests' };
  const TEST_TYPES = new Set(['test', 'unit_test']);

  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ESC[c]);
  const enc = encodeURIComponent;
  const fmt = n => Number(n).toLocaleString('en-US');
  const $ = (selector, root = document) => root.querySelector(selector);
  const main = $('#main');

  const data = window.STRATA_DOCS;
  if (!data || typeof data.nodes !== 'object') {
    main.innerHTML = '<div class="empty"><h1>No docs data</h1><p><code>docs-data.js</code> is missing ' +
      'beside this page or sets no <code>window.STRATA_DOCS</code>. Run <code>strata docs generate</code>.</p></div>';
    return;
  }

  // ---------------------------------------------------------------- index, built once in O(n)
  const ids = Object.keys(data.nodes);
  const nodes = ids.map(id => data.nodes[id]);
  const count = ids.length;
  const indexOf = new Map();
  const isTest = new Uint8Array(count);
  const typeCount = {};
  const byName = new Map(); // name -> indices, for selectors
  // Search keys, lowercased. Tags and columns are joined with \u0001 so one indexOf scans them.
  const keyName = new Array(count), keyTags = new Array(count), keyCols = new Array(count);
  for (let i = 0; i < count; i++) {
    const n = nodes[i];
    indexOf.set(ids[i], i);
    typeCount[n.resource_type] = (typeCount[n.resource_type] || 0) + 1;
    if (TEST_TYPES.has(n.resource_type)) isTest[i] = 1;
    const name = String(n.name ?? ids[i]);
    (byName.get(name) || byName.set(name, []).get(name)).push(i);
    keyName[i] = name.toLowerCase();
    keyTags[i] = n.tags && n.tags.length ? '\u0001' + n.tags.join('\u0001').toLowerCase() : '';
    keyCols[i] = n.columns && n.columns.length ? '\u0001' + n.columns.map(c => c.name).join('\u0001').toLowerCase() : '';
  }
  // Edges come from `parents` alone, so a node's children are exactly those naming it a parent.
  const parents = new Array(count), children = new Array(count);
  for (let i = 0; i < count; i++) children[i] = [];
  for (let i = 0; i < count; i++) {
    const list = [];
    for (const p of nodes[i].parents || []) {
      const j = indexOf.get(p);
      if (j !== undefined && j !== i) { list.push(j); children[j].push(i); }
    }
    parents[i] = list;
  }
  const typeRank = i => { const r = TYPES.indexOf(nodes[i].resource_type); return r < 0 ? TYPES.length : r; };
  const byTypeName = (a, b) => typeRank(a) - typeRank(b) || (keyName[a] < keyName[b] ? -1 : keyName[a] > keyName[b] ? 1 : 0);
  const columnCache = new Array(count);
  function columnsOf(i) { // lowercased name -> column, built on first use
    let m = columnCache[i];
    if (!m) {
      m = new Map();
      for (const c of nodes[i].columns || []) m.set(String(c.name).toLowerCase(), c);
      columnCache[i] = m;
    }
    return m;
  }

  // ---------------------------------------------------------------- small HTML helpers
  const nodeHref = (id, column) => '#!/node/' + enc(id) + (column ? '/col/' + enc(column) : '');
  const badge = type => `<span class="badge t-${esc(type)}">${esc(String(type).replace('_', ' '))}</span>`;
  function nodeLink(id, label) {
    const i = indexOf.get(id);
    if (i === undefined) return `<span class="missing" title="not in this project">${esc(id)}</span>`;
    const n = nodes[i];
    return `<a class="node-link" data-link="${esc(id)}" href="${nodeHref(id)}" title="${esc(id)}">` +
      `${badge(n.resource_type)}<span>${esc(label ?? n.name)}</span></a>`;
  }
  const linkList = (list, testid) => list.length
    ? `<ul class="links" data-testid="${testid}">${list.map(i => `<li>${nodeLink(ids[i])}</li>`).join('')}</ul>`
    : `<p class="muted" data-testid="${testid}">None.</p>`;

  // A tiny Markdown renderer: paragraphs, headings, lists, fenced code, `code`, **bold**,
  // *italic*, [links](url). Everything is escaped first; only these tags are ever produced.
  function markdown(source) {
    const lines = String(source ?? '').replace(/\r\n?/g, '\n').replace(/\u0000/g, '').split('\n');
    let out = '', para = [], list = null;
    const flushPara = () => { if (para.length) out += `<p>${inline(para.join(' '))}</p>`; para = []; };
    const flushList = () => {
      if (list) out += `<${list.tag}>${list.items.map(t => `<li>${inline(t)}</li>`).join('')}</${list.tag}>`;
      list = null;
    };
    for (let k = 0; k < lines.length; k++) {
      const line = lines[k];
      let m;
      if ((m = /^\s*(```|~~~)/.exec(line))) {
        flushPara(); flushList();
        const code = [];
        while (++k < lines.length && !lines[k].trim().startsWith(m[1])) code.push(lines[k]);
        out += `<pre><code>${esc(code.join('\n'))}</code></pre>`;
      } else if (!line.trim()) {
        flushPara(); flushList();
      } else if ((m = /^(#{1,6})\s+(.*?)[\s#]*$/.exec(line))) {
        flushPara(); flushList();
        const level = Math.min(6, m[1].length + 2); // a description's # sits below the page's h2
        out += `<h${level}>${inline(m[2])}</h${level}>`;
      } else if ((m = /^\s*(?:([-*+])|\d+[.)])\s+(.*)$/.exec(line))) {
        flushPara();
        const tag = m[1] ? 'ul' : 'ol';
        if (list && list.tag !== tag) flushList();
        if (!list) list = { tag, items: [] };
        list.items.push(m[2]);
      } else if (list && /^\s+\S/.test(line)) {
        list.items[list.items.length - 1] += ' ' + line.trim();
      } else {
        flushList();
        para.push(line.trim());
      }
    }
    flushPara(); flushList();
    return out;
  }
  function inline(text) {
    const codes = [];
    text = text.replace(/`([^`]+)`/g, (_, c) => `\u0000${codes.push(c) - 1}\u0000`);
    text = esc(text)
      .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, label, url) => `<a href="${safeUrl(url)}">${label}</a>`)
      .replace(/\*\*(.+?)\*\*|__(.+?)__/g, (_, a, b) => `<strong>${a ?? b}</strong>`)
      .replace(/(^|[^\w*])\*(?!\s)(.+?)\*(?!\w)|(^|\W)_(?!\s)([^_]+?)_(?!\w)/g,
        (_, p1, a, p2, b) => `${p1 ?? p2}<em>${a ?? b}</em>`);
    return text.replace(/\u0000(\d+)\u0000/g, (_, k) => `<code>${esc(codes[k])}</code>`);
  }
  // Only web, mail and in-page links; `javascript:` and friends become inert.
  const safeUrl = url => /^[a-z][a-z0-9+.-]*:/i.test(url) && !/^(https?|mailto):/i.test(url) ? '#' : url;

  // ---------------------------------------------------------------- search
  const searchInput = $('#search'), resultsList = $('#search-results');
  let results = [], active = -1;

  // Ranks: exact name, name prefix, name substring, tag prefix, column substring; tests after
  // the rest within a rank. One pass over flat string arrays, each rank's bucket capped.
  function search(query) {
    const q = query.trim().toLowerCase();
    if (!q) return { hits: [], total: 0 };
    const buckets = Array.from({ length: 10 }, () => []);
    const tagKey = '\u0001' + q;
    let total = 0;
    for (let i = 0; i < count; i++) {
      const name = keyName[i];
      let rank;
      if (name === q) rank = 0;
      else if (name.startsWith(q)) rank = 1;
      else if (name.includes(q)) rank = 2;
      else if (keyTags[i].includes(tagKey)) rank = 3;
      else if (keyCols[i].includes(q)) rank = 4;
      else continue;
      total++;
      const bucket = buckets[rank * 2 + isTest[i]];
      if (bucket.length < MAX_RESULTS) bucket.push({ i, rank });
    }
    const hits = [].concat(...buckets).slice(0, MAX_RESULTS);
    for (const hit of hits) {
      if (hit.rank === 3) hit.tag = nodes[hit.i].tags.find(t => t.toLowerCase().startsWith(q));
      if (hit.rank === 4) hit.column = nodes[hit.i].columns.find(c => c.name.toLowerCase().includes(q)).name;
    }
    return { hits, total };
  }

  function renderResults() {
    const t0 = performance.now();
    const { hits, total } = search(searchInput.value);
    results = hits;
    active = hits.length ? 0 : -1;
    if (!searchInput.value.trim()) {
      resultsList.hidden = true;
    } else {
      resultsList.innerHTML = (hits.length ? hits.map((h, k) => {
        const n = nodes[h.i];
        const why = h.column ? `column <code>${esc(h.column)}</code>` : h.tag ? `tag <code>${esc(h.tag)}</code>` : esc(n.path || '');
        return `<li role="option" data-testid="search-result" data-result="${esc(ids[h.i])}" data-k="${k}"` +
          `${k === active ? ' class="active" aria-selected="true"' : ''}>${badge(n.resource_type)}` +
          `<span class="r-name">${esc(n.name)}</span><span class="r-why">${why}</span></li>`;
      }).join('') : '<li class="r-none">No matches</li>') +
        (total > hits.length ? `<li class="r-more">${fmt(hits.length)} of ${fmt(total)} matches shown; type more to narrow</li>` : '');
      resultsList.hidden = false;
    }
    searchInput.setAttribute('aria-expanded', String(!resultsList.hidden));
    window.STRATA_LAST_SEARCH_MS = performance.now() - t0;
  }
  function setActive(k) {
    if (!results.length) return;
    active = (k + results.length) % results.length;
    for (const li of resultsList.querySelectorAll('[data-k]')) {
      const on = Number(li.dataset.k) === active;
      li.classList.toggle('active', on);
      if (on) { li.setAttribute('aria-selected', 'true'); li.scrollIntoView({ block: 'nearest' }); } else li.removeAttribute('aria-selected');
    }
  }
  function openResult(k) {
    const hit = results[k];
    if (!hit) return;
    resultsList.hidden = true;
    searchInput.blur();
    location.hash = nodeHref(ids[hit.i], hit.column);
  }
  searchInput.addEventListener('input', renderResults);
  searchInput.addEventListener('focus', () => { if (searchInput.value.trim()) renderResults(); });
  searchInput.addEventListener('blur', () => setTimeout(() => { resultsList.hidden = true; }, 150));
  searchInput.addEventListener('keydown', e => {
    if (e.key === 'ArrowDown') { e.preventDefault(); setActive(active + 1); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); setActive(active - 1); }
    else if (e.key === 'Enter') { e.preventDefault(); openResult(Math.max(active, 0)); }
    else if (e.key === 'Escape') { resultsList.hidden = true; searchInput.blur(); }
  });
  resultsList.addEventListener('mousedown', e => { // before the input's blur hides the list
    const li = e.target.closest('[data-k]');
    if (li) { e.preventDefault(); openResult(Number(li.dataset.k)); }
  });
  document.addEventListener('keydown', e => {
    if (e.key === '/' && !/^(INPUT|TEXTAREA)$/.test(document.activeElement.tagName)) { e.preventDefault(); searchInput.focus(); }
  });

  // ---------------------------------------------------------------- selectors
  // strata's selector syntax: `name`, `+name`, `name+`, `2+name+1`, `@name`, `method:value`;
  // spaces are unions, commas intersections. Graph walks skip tests: they only appear when a
  // selector names them (by name, id, `resource_type:`, `test_name:`, or a singular test's path).
  const glob = v => v.includes('*') ? new RegExp('^' + v.split('*').map(s => s.replace(/[.?+^$|()[\]{}\\]/g, '\\$&')).join('.*') + '$', 'i') : null;
  const same = (value, v, re) => value != null && (re ? re.test(String(value)) : String(value).toLowerCase() === v.toLowerCase());

  function matchAtom(value) {
    const out = new Uint8Array(count);
    const colon = value.indexOf(':');
    const method = colon > 0 ? value.slice(0, colon) : '';
    const v = colon > 0 ? value.slice(colon + 1) : value;
    const re = glob(v);
    if (!method) {
      const j = indexOf.get(v);
      if (j !== undefined) { out[j] = 1; return out; }
      if (v.includes('/')) return matchAtom('path:' + v);
      let any = false;
      for (let i = 0; i < count; i++) {
        if (nodes[i].resource_type !== 'source' && (re ? re.test(nodes[i].name) : nodes[i].name === v)) { out[i] = 1; any = true; }
      }
      if (!any) for (const i of byName.get(v) || []) out[i] = 1; // a source table named bare
      return out;
    }
    const config = method.startsWith('config.') ? method.slice(7) : null;
    const test = {
      tag: n => (n.tags || []).some(t => same(t, v, re)),
      path: n => n.path && (same(n.path, v, re) || n.path.startsWith(v.replace(/\/+$/, '') + '/')),
      resource_type: n => same(n.resource_type, v, re),
      package: n => same(n.package, v, re),
      fqn: n => n.fqn && (same(n.fqn.join('.'), v, re) || n.fqn.join('.').startsWith(v + '.')),
      source: n => n.resource_type === 'source' && (same(n.source_name, v, re) || same(`${n.source_name}.${n.name}`, v, re)),
      test_name: n => same(n.test_name, v, re),
    }[method] || (config && (n => n.config && typeof n.config[config] !== 'object' && same(n.config[config], v, re)));
    if (!test) throw new Error(`unknown selector method \`${method}\` (try tag:, path:, resource_type:, package:, source:, fqn:, config.KEY:)`);
    // Generic tests share their YAML file's path; only a singular test's own file selects it.
    const withTests = method === 'resource_type' || method === 'test_name';
    for (let i = 0; i < count; i++) {
      if (isTest[i] && !withTests && !(method === 'path' && !/\.ya?ml$/.test(nodes[i].path || ''))) continue;
      if (test(nodes[i])) out[i] = 1;
    }
    return out;
  }
  function walk(marks, seeds, edges, limit) { // breadth-first, `limit` steps, skipping tests
    const seen = new Uint8Array(count);
    let frontier = seeds;
    for (let depth = 0; frontier.length && depth < limit; depth++) {
      const next = [];
      for (const v of frontier) for (const w of edges[v]) if (!seen[w] && !isTest[w]) { seen[w] = 1; marks[w] = 1; next.push(w); }
      frontier = next;
    }
  }
  function selectAtom(atom) {
    const m = /^(@)?(?:(\d*)\+)?(.+?)(?:\+(\d*))?$/.exec(atom);
    const marks = matchAtom(m[3]);
    const seeds = [];
    for (let i = 0; i < count; i++) if (marks[i]) seeds.push(i);
    const steps = s => s === undefined ? 0 : s === '' ? Infinity : Number(s);
    if (m[1]) { // @name: the descendants and every ancestor of each of them
      walk(marks, seeds, children, Infinity);
      const all = [];
      for (let i = 0; i < count; i++) if (marks[i]) all.push(i);
      walk(marks, all, parents, Infinity);
    } else {
      walk(marks, seeds, parents, steps(m[2]));
      walk(marks, seeds, children, steps(m[4]));
    }
    return marks;
  }
  function select(expression) {
    const union = new Uint8Array(count);
    for (const token of expression.trim().split(/\s+/).filter(Boolean)) {
      let acc = null;
      for (const part of token.split(',').filter(Boolean)) {
        const marks = selectAtom(part);
        if (!acc) acc = marks; else for (let i = 0; i < count; i++) acc[i] &= marks[i];
      }
      if (acc) for (let i = 0; i < count; i++) union[i] |= acc[i];
    }
    const list = [];
    for (let i = 0; i < count; i++) if (union[i]) list.push(i);
    return list;
  }
  function defaultSelector(i) {
    const n = nodes[i];
    const name = n.resource_type === 'source' ? `source:${n.source_name}.${n.name}`
      : (byName.get(n.name) || []).filter(j => nodes[j].resource_type !== 'source').length === 1 && !/[\s,:+@/*]/.test(n.name) ? n.name : ids[i];
    return `+${name}+`;
  }
  // The home page's view of a project too big to draw whole: `N+name` for its deepest node, with
  // the largest N that fits in `limit` nodes (the pipeline that feeds the last mart).
  function sampleSelector(limit) {
    const indegree = new Int32Array(count), depth = new Int32Array(count), queue = [];
    for (let i = 0; i < count; i++) if (!isTest[i]) for (const p of parents[i]) if (!isTest[p]) indegree[i]++;
    for (let i = 0; i < count; i++) if (!isTest[i] && !indegree[i]) queue.push(i);
    let deepest = queue[0];
    for (let h = 0; h < queue.length; h++) {
      const v = queue[h];
      if (depth[v] > depth[deepest]) deepest = v;
      for (const c of children[v]) if (!isTest[c]) {
        if (depth[v] + 1 > depth[c]) depth[c] = depth[v] + 1;
        if (--indegree[c] === 0) queue.push(c);
      }
    }
    if (deepest === undefined) return '';
    const seen = new Uint8Array(count);
    let frontier = [deepest], total = 1, steps = 0;
    seen[deepest] = 1;
    for (;;) {
      const next = [];
      for (const v of frontier) for (const p of parents[v]) if (!seen[p] && !isTest[p]) { seen[p] = 1; next.push(p); }
      if (!next.length) return `+${defaultSelector(deepest).slice(1, -1)}`;
      if (total + next.length > limit) return `${steps}+${defaultSelector(deepest).slice(1, -1)}`;
      total += next.length; steps++; frontier = next;
    }
  }

  // ---------------------------------------------------------------- graph layout
  // Layers left to right by longest path among the shown nodes; within a layer, one barycenter
  // sweep each way to cut crossings a little.
  function layout(list) {
    const m = list.length, local = new Map();
    list.forEach((v, k) => local.set(v, k));
    const ins = Array.from({ length: m }, () => []), outs = Array.from({ length: m }, () => []);
    for (let k = 0; k < m; k++) {
      for (const p of parents[list[k]]) {
        const j = local.get(p);
        if (j !== undefined) { ins[k].push(j); outs[j].push(k); }
      }
    }
    const indegree = ins.map(a => a.length), depth = new Int32Array(m), queue = [];
    for (let k = 0; k < m; k++) if (!indegree[k]) queue.push(k);
    for (let h = 0; h < queue.length; h++) {
      for (const c of outs[queue[h]]) {
        if (depth[queue[h]] + 1 > depth[c]) depth[c] = depth[queue[h]] + 1;
        if (--indegree[c] === 0) queue.push(c);
      }
    }
    const layers = [];
    for (let k = 0; k < m; k++) (layers[depth[k]] ||= []).push(k);
    for (const layer of layers) layer.sort((a, b) => byTypeName(list[a], list[b]));
    const tallest = Math.max(...layers.map(l => l.length));
    const y = new Float64Array(m);
    const place = layer => layer.forEach((k, row) => { y[k] = (row + (tallest - layer.length) / 2) * PITCH; });
    layers.forEach(place);
    const sweep = (order, neighbours) => {
      for (const d of order) {
        const key = new Map(layers[d].map(k => {
          const ns = neighbours[k];
          return [k, ns.length ? ns.reduce((s, j) => s + y[j], 0) / ns.length : y[k]];
        }));
        layers[d].sort((a, b) => key.get(a) - key.get(b));
        place(layers[d]);
      }
    };
    sweep(layers.map((_, d) => d).slice(1), ins);
    sweep(layers.map((_, d) => d).reverse().slice(1), outs);
    const x = Array.from(depth, d => d * (NODE_W + GAP_X));
    return { list, ins, x, y, width: layers.length * (NODE_W + GAP_X) - GAP_X, height: tallest * PITCH - GAP_Y };
  }

  // ---------------------------------------------------------------- graph view
  const clip = (s, max) => s.length > max ? s.slice(0, max - 1) + '…' : s;
  const subtitle = n => n.resource_type === 'source' ? `source · ${n.source_name ?? ''}`
    : n.materialized ? `${n.resource_type} · ${n.materialized}` : String(n.resource_type).replace('_', ' ');

  function mountGraph(host, { selector, focus = -1, fallback = null, sampleNote = '' }) {
    host.innerHTML = `
      <form class="graph-bar">
        <input class="selector" data-testid="graph-selector" spellcheck="false" autocomplete="off"
          placeholder="Select: +name  name+  2+name  @name  tag:gold  path:models/gold  resource_type:seed" value="${esc(selector)}">
        <button type="submit">Show</button>
        <span class="spacer"></span>
        <button type="button" data-zoom="in" title="Zoom in">+</button><button type="button" data-zoom="out" title="Zoom out">−</button>
        <button type="button" data-zoom="fit" title="Fit to view">Fit</button>
      </form>
      <p class="graph-note" data-testid="graph-note" hidden></p>
      <div class="graph-view" data-testid="graph">
        <svg class="graph" xmlns="http://www.w3.org/2000/svg"><defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4"
          markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L8,4L0,8z"/></marker></defs>
          <g class="viewport"><g class="edges"></g><g class="nodes"></g></g></svg>
      </div>
      <div class="legend">${TYPES.filter(t => typeCount[t]).map(t => `<span><i class="dot t-${t}"></i>${t.replace('_', ' ')}</span>`).join('')}
        <span class="muted">Wheel to zoom, drag to pan, click a node to open it. Space = union, comma = intersection.</span></div>`;
    const form = $('form', host), input = $('input', host), note = $('.graph-note', host);
    const svg = $('svg', host), viewport = $('.viewport', svg), edgeLayer = $('.edges', svg), nodeLayer = $('.nodes', svg);
    const view = { k: 1, x: 0, y: 0 };
    let shown = null, nodeEls = new Map(), edgeEls = [], highlight = null;

    const applyView = () => viewport.setAttribute('transform', `translate(${view.x},${view.y}) scale(${view.k})`);
    const say = html => { note.innerHTML = html || ''; note.hidden = !html; };

    function fit(whole) {
      if (!shown) return;
      const box = svg.getBoundingClientRect(), pad = 24;
      let k = Math.min(1.1, (box.width - 2 * pad) / Math.max(shown.width, 1), (box.height - 2 * pad) / Math.max(shown.height, 1));
      if (k >= 0.4 || whole) {
        k = Math.max(k, 0.05);
        view.k = k; view.x = (box.width - shown.width * k) / 2; view.y = (box.height - shown.height * k) / 2;
      } else { // too big to read whole: readable zoom on the focus node, or on the top left
        k = view.k = 0.75;
        const f = shown.list.indexOf(focus);
        view.x = f >= 0 ? box.width / 2 - (shown.x[f] + NODE_W / 2) * k : pad;
        view.y = f >= 0 ? box.height / 2 - (shown.y[f] + NODE_H / 2) * k : pad;
      }
      applyView();
    }

    function draw(list) {
      shown = list.length ? layout(list) : null;
      let nodesSvg = '', edgesSvg = '';
      if (shown) {
        const { x, y, ins } = shown;
        list.forEach((v, k) => {
          const n = nodes[v];
          nodesSvg += `<g class="node t-${esc(n.resource_type)}${v === focus ? ' focus' : ''}" data-node="${esc(ids[v])}" data-i="${v}" ` +
            `transform="translate(${x[k]},${y[k]})" tabindex="0"><title>${esc(ids[v])}</title>` +
            `<rect class="box" width="${NODE_W}" height="${NODE_H}" rx="6"/><rect class="stripe" width="5" height="${NODE_H}" rx="2"/>` +
            `<text class="name" x="14" y="17">${esc(clip(String(n.name), 26))}</text>` +
            `<text class="sub" x="14" y="33">${esc(clip(subtitle(n), 32))}</text></g>`;
          for (const j of ins[k]) {
            const x1 = x[j] + NODE_W, y1 = y[j] + NODE_H / 2, x2 = x[k] - 2, y2 = y[k] + NODE_H / 2, dx = Math.max(24, (x2 - x1) / 2);
            edgesSvg += `<path class="edge" data-from="${list[j]}" data-to="${v}" d="M${x1},${y1}C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}"/>`;
          }
        });
      }
      edgeLayer.innerHTML = edgesSvg;
      nodeLayer.innerHTML = nodesSvg;
      nodeEls = new Map([...nodeLayer.children].map(g => [Number(g.dataset.i), g]));
      edgeEls = [...edgeLayer.children];
      // A node page's graph is as tall as its lineage needs, within limits.
      if (focus >= 0 && shown) svg.parentNode.style.height = `${Math.round(Math.max(220, Math.min(480, shown.height * 1.1 + 60)))}px`;
      fit();
      paintHighlight();
    }

    // Resolves the input's selection to at most MAX_DRAW nodes. When a column was just clicked,
    // the nodes its lineage passes through are added while that still fits; a selection typed
    // afterwards is drawn as typed.
    function apply(withLineage) {
      const t0 = performance.now();
      const expression = input.value.trim();
      let list, message = '';
      try {
        if (!expression && fallback) ({ list, message } = fallback());
        else if (!expression) { list = []; message = 'Enter a selection to draw part of the graph.'; }
        else {
          list = select(expression);
          if (list.length > MAX_DRAW && focus >= 0 && expression === defaultSelector(focus)) {
            const full = list.length, base = expression.slice(1, -1);
            for (const d of [3, 2, 1]) {
              list = select(`${d}+${base}+${d}`);
              if (list.length <= MAX_DRAW) { message = `The full lineage has ${fmt(full)} nodes; showing <code>${esc(`${d}+${base}+${d}`)}</code>.`; break; }
            }
          }
          if (list.length > MAX_DRAW) {
            message = `<code>${esc(expression)}</code> selects ${fmt(list.length)} nodes; the graph draws at most ${fmt(MAX_DRAW)}. ` +
              'Narrow it with a depth (<code>2+name+1</code>) or an intersection (<code>tag:gold,path:models/gold</code>).';
            list = [];
          } else if (!list.length) message = `No nodes match <code>${esc(expression)}</code>.`;
        }
      } catch (error) {
        list = []; message = esc(error.message).replace(/`([^`]+)`/g, '<code>$1</code>');
      }
      if (highlight && withLineage) {
        const extra = [...highlight.nodes.keys()].filter(v => !list.includes(v));
        if (list.length && list.length + extra.length <= MAX_DRAW) list = list.concat(extra);
      }
      say(message || (expression === selector ? sampleNote : ''));
      draw(list);
      window.STRATA_LAST_GRAPH_MS = performance.now() - t0;
    }

    function paintHighlight() {
      svg.classList.toggle('has-highlight', !!highlight);
      for (const [v, g] of nodeEls) {
        const columns = highlight && highlight.nodes.get(v);
        g.classList.toggle('highlighted', !!columns);
        const sub = g.querySelector('.sub');
        sub.textContent = clip(columns ? [...columns].join(', ') : subtitle(nodes[v]), 32);
        if (columns) sub.insertAdjacentHTML('beforeend', `<title>${esc([...columns].join(', '))}</title>`);
      }
      for (const e of edgeEls) e.classList.toggle('highlighted', !!highlight && highlight.edges.has(e.dataset.from + ',' + e.dataset.to));
    }

    form.addEventListener('submit', e => { e.preventDefault(); apply(); });
    host.addEventListener('click', e => {
      const b = e.target.closest('[data-zoom]');
      if (!b) return;
      if (b.dataset.zoom === 'fit') return fit(true);
      const box = svg.getBoundingClientRect();
      zoomAt(box.width / 2, box.height / 2, b.dataset.zoom === 'in' ? 1.25 : 0.8);
    });
    function zoomAt(mx, my, factor) {
      const k = Math.min(3, Math.max(0.08, view.k * factor));
      view.x = mx - (mx - view.x) * k / view.k;
      view.y = my - (my - view.y) * k / view.k;
      view.k = k;
      applyView();
    }
    svg.addEventListener('wheel', e => {
      e.preventDefault();
      const box = svg.getBoundingClientRect();
      zoomAt(e.clientX - box.left, e.clientY - box.top, Math.exp(-e.deltaY * 0.0015));
    }, { passive: false });
    let drag = null;
    svg.addEventListener('pointerdown', e => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false, node: e.target.closest('[data-node]') };
      svg.setPointerCapture(e.pointerId);
    });
    svg.addEventListener('pointermove', e => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      drag.moved = true;
      svg.classList.add('dragging');
      view.x = drag.vx + dx; view.y = drag.vy + dy;
      applyView();
    });
    const endDrag = open => {
      const d = drag;
      drag = null;
      svg.classList.remove('dragging');
      if (open && d && !d.moved && d.node) location.hash = nodeHref(d.node.dataset.node);
    };
    svg.addEventListener('pointerup', () => endDrag(true));
    svg.addEventListener('pointercancel', () => endDrag(false));
    svg.addEventListener('keydown', e => {
      const g = e.target.closest('[data-node]');
      if (g && e.key === 'Enter') location.hash = nodeHref(g.dataset.node);
    });

    apply();
    return {
      setHighlight(h) {
        highlight = h;
        if (h && shown && [...h.nodes.keys()].some(v => !nodeEls.has(v))) apply(true); else paintHighlight();
      },
    };
  }

  // ---------------------------------------------------------------- column lineage
  // The closure over `upstream` pairs, breadth first, so each column sits at its shortest
  // distance. Also returns the nodes and edges on the way, for the graph.
  function traceColumn(i, name) {
    const start = columnsOf(i).get(String(name).toLowerCase());
    const onPath = new Map([[i, new Set([start ? start.name : name])]]), edges = new Set(), levels = [];
    const seen = new Set([ids[i] + '\u0000' + String(name).toLowerCase()]);
    let frontier = [{ i, col: start }];
    while (frontier.length) {
      const next = [];
      for (const f of frontier) {
        for (const [id, column] of (f.col && f.col.lineage && f.col.lineage.upstream) || []) {
          const j = indexOf.get(id) ?? -1;
          if (j >= 0 && f.i >= 0) edges.add(j + ',' + f.i);
          const key = id + '\u0000' + String(column).toLowerCase();
          if (seen.has(key)) continue;
          seen.add(key);
          const col = j >= 0 ? columnsOf(j).get(String(column).toLowerCase()) : undefined;
          const entry = { i: j, id, name: col ? col.name : String(column), col };
          next.push(entry);
          if (j >= 0) (onPath.get(j) || onPath.set(j, new Set()).get(j)).add(entry.name);
        }
      }
      if (next.length) levels.push(next);
      frontier = next;
    }
    return { start, levels, nodes: onPath, edges };
  }

  const statusChip = lineage => lineage && lineage.status
    ? `<span class="chip s-${esc(lineage.status)}" title="${esc(lineage.note || '')}">${esc(lineage.status)}</span>` : '';

  function lineagePanel(i, trace) {
    const column = trace.start, lineage = column && column.lineage;
    let html = `<h2>Upstream of <code>${esc(column ? column.name : '?')}</code></h2>`;
    if (lineage && lineage.status && lineage.status !== 'traced') {
      html += `<p class="note s-${esc(lineage.status)}" data-testid="lineage-note"><strong>${esc(lineage.status)}:</strong> ${esc(lineage.note || 'no reason recorded')}</p>`;
    }
    if (!trace.levels.length) {
      html += `<p class="muted">${lineage ? 'No upstream columns.' : `No lineage recorded; for a ${esc(nodes[i].resource_type)} the data starts here.`}</p>`;
    }
    let shownCount = 0;
    trace.levels.forEach((level, d) => {
      if (shownCount >= 500) return;
      html += `<h3>${d + 1} step${d ? 's' : ''} up</h3><ul class="upstream">`;
      for (const e of level.slice(0, 500 - shownCount)) {
        const label = `${e.i >= 0 ? esc(nodes[e.i].name) : esc(e.id)}.<b>${esc(e.name)}</b>`;
        const stop = e.col && e.col.lineage && e.col.lineage.status !== 'traced' ? e.col.lineage : null;
        html += `<li data-testid="upstream-item" data-upstream="${esc(e.id + '.' + e.name)}" data-upstream-node="${esc(e.id)}" data-upstream-column="${esc(e.name)}">` +
          (e.i >= 0 ? `<a href="${nodeHref(e.id, e.name)}">${badge(nodes[e.i].resource_type)}<span>${label}</span></a>` : `<span class="missing">${label}</span>`) +
          (stop ? ` ${statusChip(stop)} <span class="muted small">${esc(stop.note || '')}</span>` : '') +
          (e.i >= 0 && !e.col ? ' <span class="muted small">(not documented on that node)</span>' : '') + '</li>';
        shownCount++;
      }
      html += '</ul>';
    });
    if (shownCount >= 500) html += '<p class="muted">More columns are upstream than listed here.</p>';
    return html;
  }

  // ---------------------------------------------------------------- pages
  let graph = null;

  function renderHome(selector) {
    let sampleNote = '';
    if (!selector && count - (typeCount.test || 0) - (typeCount.unit_test || 0) > SMALL_PROJECT) {
      selector = sampleSelector(HOME_SAMPLE);
      sampleNote = `This project has ${fmt(count)} nodes, too many to draw at once: showing <code>${esc(selector)}</code>, ` +
        'the lineage of its deepest node. Change the selection to see another part.';
    }
    const counts = TYPES.filter(t => typeCount[t]).map(t => `<span class="stat">${badge(t)} ${fmt(typeCount[t])}</span>`).join('');
    main.innerHTML = `<div class="page" data-testid="home-page">
      <header class="page-head"><h1>${esc(data.project || 'Project')}</h1>
        <p class="meta">${data.target ? `target <code>${esc(data.target)}</code> · ` : ''}${fmt(count)} nodes` +
          `${data.generated_at ? ` · generated ${esc(String(data.generated_at).replace('T', ' ').replace(/\.\d+/, ''))}` : ''}</p>
        <div class="stats">${counts}</div></header>
      <section class="card graph-card home"><h2>Lineage</h2><div class="graph-host"></div></section></div>`;
    graph = mountGraph($('.graph-host', main), {
      selector, sampleNote,
      fallback: () => sampleNote ? { list: [], message: 'Enter a selection to draw part of the graph.' }
        : { list: ids.map((_, i) => i).filter(i => !isTest[i]), message: '' },
    });
    const input = $('.selector', main);
    $('form', main).addEventListener('submit', () => history.replaceState(null, '', input.value.trim() ? '#!/graph/' + enc(input.value.trim()) : '#!/'));
  }

  function renderNode(i, columnName) {
    const n = nodes[i], id = ids[i];
    const meta = [
      n.materialized && `<span><em>materialized</em> ${esc(n.materialized)}</span>`,
      n.relation && `<span><em>relation</em> <code>${esc(n.relation)}</code></span>`,
      n.path && `<span><em>path</em> <code>${esc(n.path)}</code></span>`,
      n.package && `<span><em>package</em> ${esc(n.package)}</span>`,
      n.row_count != null && `<span data-testid="row-count"><em>rows</em> ${fmt(n.row_count)}</span>`,
    ].filter(Boolean).join('');
    const tags = (n.tags || []).map(t => `<a class="tag" href="#!/graph/${enc('tag:' + t)}">${esc(t)}</a>`).join('');
    const testLink = tid => {
      const j = indexOf.get(tid);
      return j === undefined ? `<span class="missing">${esc(tid)}</span>`
        : `<a class="test-link" data-link="${esc(tid)}" href="${nodeHref(tid)}" title="${esc(tid)}">${esc(nodes[j].test_name || nodes[j].name)}</a>`;
    };
    const columns = n.columns || [];
    const columnRows = columns.map(c => `<tr data-testid="column-row" data-column="${esc(c.name)}" tabindex="0">
        <td class="c-name"><code>${esc(c.name)}</code></td><td class="c-type">${esc(c.type || '')}</td>
        <td class="md">${markdown(c.description)}</td><td class="c-tests">${(c.tests || []).map(testLink).join(' ')}</td>
        <td>${statusChip(c.lineage)}</td></tr>`).join('');
    const visibleChildren = children[i].filter(c => !isTest[c]).sort(byTypeName);
    const testSection = isTest[i] ? `<section class="card"><h2>Test</h2><dl class="facts">
        ${n.test_name ? `<dt>Test</dt><dd><code>${esc(n.test_name)}</code></dd>` : ''}
        ${n.attached_node ? `<dt>On</dt><dd>${nodeLink(n.attached_node)}</dd>` : ''}
        ${n.column_name ? `<dt>Column</dt><dd><a href="${nodeHref(n.attached_node, n.column_name)}"><code>${esc(n.column_name)}</code></a></dd>` : ''}
      </dl></section>` : '';
    const sql = { compiled: n.compiled_sql || '', raw: n.raw_sql || '' };
    const firstSql = sql.compiled ? 'compiled' : 'raw';
    const config = n.config && Object.keys(n.config).length ? JSON.stringify(n.config, null, 2) : '';
    main.innerHTML = `<div class="page" data-testid="node-page" data-node-id="${esc(id)}">
      <header class="page-head">
        <div class="crumbs">${badge(n.resource_type)}<span class="muted">${esc((n.fqn || []).join(' / ') || id)}</span></div>
        <h1>${esc(n.name)}</h1><div class="meta">${meta}</div>${tags ? `<div class="tags">${tags}</div>` : ''}
      </header>
      <section class="description md" data-testid="description">${n.description ? markdown(n.description) : '<p class="muted">No description.</p>'}</section>
      ${testSection}
      <section class="card graph-card"><h2>Lineage</h2><div class="graph-host"></div></section>
      <div class="columns-grid">
        <section class="card" data-testid="columns"><h2>Columns <span class="count">${columns.length}</span></h2>
          ${columns.length ? `<div class="table-wrap"><table class="columns"><thead><tr><th>Column</th><th>Type</th><th>Description</th><th>Tests</th><th>Lineage</th></tr></thead>
          <tbody>${columnRows}</tbody></table></div><p class="muted small">Click a column to trace where it comes from.</p>` : '<p class="muted">No columns documented.</p>'}
        </section>
        <section class="card lineage-panel" data-testid="column-lineage" hidden></section>
      </div>
      <div class="two">
        <section class="card"><h2>Parents <span class="count">${parents[i].length}</span></h2>${linkList(parents[i].slice().sort(byTypeName), 'parents')}</section>
        <section class="card"><h2>Children <span class="count">${visibleChildren.length}</span></h2>${linkList(visibleChildren, 'children')}</section>
      </div>
      ${isTest[i] ? '' : `<section class="card"><h2>Data tests <span class="count">${(n.tests || []).length}</span></h2>
        ${(n.tests || []).length ? `<ul class="links" data-testid="node-tests">${n.tests.map(t => `<li>${nodeLink(t)}${
          indexOf.has(t) && nodes[indexOf.get(t)].column_name ? ` <span class="muted small">on <code>${esc(nodes[indexOf.get(t)].column_name)}</code></span>` : ''}</li>`).join('')}</ul>`
          : '<p class="muted" data-testid="node-tests">No data tests.</p>'}</section>`}
      ${sql.compiled || sql.raw ? `<section class="card"><div class="tabs">
          ${sql.compiled ? `<button type="button" data-sql="compiled"${firstSql === 'compiled' ? ' class="active"' : ''}>Compiled SQL</button>` : ''}
          ${sql.raw ? `<button type="button" data-sql="raw"${firstSql === 'raw' ? ' class="active"' : ''}>Source</button>` : ''}
          <span class="spacer"></span><button type="button" class="copy">Copy</button></div>
        <pre class="code" data-testid="sql"><code>${esc(sql[firstSql])}</code></pre></section>` : ''}
      ${config ? `<section class="card"><h2>Config</h2><pre class="code" data-testid="config"><code>${esc(config)}</code></pre></section>` : ''}
    </div>`;

    const page = main.firstElementChild; // listeners go on the page, replaced with it
    graph = mountGraph($('.graph-host', page), { selector: defaultSelector(i), focus: i });

    const panel = $('[data-testid="column-lineage"]', page);
    let selected = null;
    const selectColumn = name => {
      selected = selected === name ? null : name;
      for (const row of page.querySelectorAll('tr[data-column]')) row.classList.toggle('selected', row.dataset.column === selected);
      history.replaceState(null, '', nodeHref(id, selected));
      if (!selected) { panel.hidden = true; graph.setHighlight(null); return; }
      const trace = traceColumn(i, selected);
      panel.innerHTML = lineagePanel(i, trace);
      panel.hidden = false;
      graph.setHighlight({ nodes: trace.nodes, edges: trace.edges });
    };
    page.addEventListener('click', e => {
      const row = e.target.closest('tr[data-column]');
      if (row && !e.target.closest('a')) selectColumn(row.dataset.column);
      const tab = e.target.closest('[data-sql]');
      if (tab) {
        for (const b of page.querySelectorAll('[data-sql]')) b.classList.toggle('active', b === tab);
        $('[data-testid="sql"] code', page).textContent = sql[tab.dataset.sql];
      }
      if (e.target.closest('.copy')) copyText($('[data-testid="sql"] code', page).textContent, e.target.closest('.copy'));
    });
    page.addEventListener('keydown', e => {
      const row = e.target.closest('tr[data-column]');
      if (row && e.key === 'Enter') selectColumn(row.dataset.column);
    });
    if (columnName) {
      const column = columnsOf(i).get(columnName.toLowerCase());
      if (column) {
        selectColumn(column.name);
        page.querySelector(`tr[data-column="${CSS.escape(column.name)}"]`).scrollIntoView({ block: 'center' });
      }
    }
  }

  async function copyText(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch { // file:// pages may not get the async clipboard
      const area = document.createElement('textarea');
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = 'Copy'; }, 1200);
  }

  // ---------------------------------------------------------------- sidebar tree
  // Groups by resource type, then folders of `path` (sources by source name). A folder's
  // entries are built when it is first opened, so 20,000 nodes cost nothing until asked for.
  const sidebar = $('#sidebar');
  function buildTree(type) {
    const root = { folders: new Map(), leaves: [] };
    for (let i = 0; i < count; i++) {
      const n = nodes[i];
      if (n.resource_type !== type) continue;
      const parts = type === 'source' ? [n.source_name || '?'] : TEST_TYPES.has(type) ? [] : String(n.path || '').split('/').slice(0, -1);
      if (parts.length > 1 && /^(models|seeds|snapshots)$/.test(parts[0])) parts.shift();
      let at = root;
      for (const p of parts) at = at.folders.get(p) || at.folders.set(p, { folders: new Map(), leaves: [] }).get(p);
      at.leaves.push(i);
    }
    return root;
  }
  function fillFolder(details, tree) {
    for (const name of [...tree.folders.keys()].sort()) {
      const sub = document.createElement('details');
      sub.className = 'folder';
      sub.innerHTML = `<summary>${esc(name)}</summary>`;
      sub.tree = tree.folders.get(name);
      details.append(sub);
    }
    const leaves = tree.leaves.sort(byTypeName);
    details.insertAdjacentHTML('beforeend', leaves.slice(0, MAX_LEAVES).map(i =>
      `<a class="leaf" href="${nodeHref(ids[i])}" title="${esc(ids[i])}">${esc(nodes[i].name)}</a>`).join('') +
      (leaves.length > MAX_LEAVES ? `<p class="muted small">and ${fmt(leaves.length - MAX_LEAVES)} more; use the search</p>` : ''));
  }
  sidebar.innerHTML = TYPES.filter(t => typeCount[t]).map(t => `<details class="group" data-type="${t}">` +
    `<summary><i class="dot t-${t}"></i>${LABELS[t]}<span class="count">${fmt(typeCount[t])}</span></summary></details>`).join('');
  sidebar.addEventListener('toggle', e => {
    const d = e.target;
    if (!d.open || d.filled) return;
    d.filled = true;
    fillFolder(d, d.tree || buildTree(d.dataset.type));
  }, true); // toggle does not bubble

  // ---------------------------------------------------------------- routing
  function route() {
    let parts;
    try { parts = location.hash.replace(/^#!?\/?/, '').split('/').map(decodeURIComponent); } catch { parts = []; }
    if (parts[0] === 'node') {
      const i = indexOf.get(parts[1]);
      if (i === undefined) {
        main.innerHTML = `<div class="empty"><h1>Not found</h1><p>No node <code>${esc(parts[1])}</code> in this project. <a href="#!/">Home</a></p></div>`;
      } else {
        renderNode(i, parts[2] === 'col' ? parts.slice(3).join('/') : null);
        document.title = `${nodes[i].name} · strata docs`;
      }
    } else {
      renderHome(parts[0] === 'graph' ? parts.slice(1).join('/') : '');
      document.title = `${data.project || 'strata'} · strata docs`;
    }
    if (!/\/col\//.test(location.hash)) window.scrollTo(0, 0);
    if (window.STRATA_READY === undefined) window.STRATA_READY = performance.now();
  }
  $('#project').textContent = data.project ? `${data.project}${data.target ? ' · ' + data.target : ''}` : '';
  window.addEventListener('hashchange', route);
  route();
})();
