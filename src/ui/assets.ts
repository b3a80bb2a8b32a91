import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let uplot: { js: string; css: string } | undefined;

/**
 * uPlot (a dependency of this package, MIT), read once from its own package: the
 * charts work offline, with no CDN.
 */
export function uplotAssets(): { js: string; css: string } {
  uplot ??= {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
  return uplot;
}

/**
 * The page's script and style, served from the package itself (no CDN: the
 * inspector works offline). The script follows `/live` (Server-Sent Events) and,
 * on a change, fetches the current page again and swaps its `main` (the server
 * escaped everything in it); it also asks for confirmation before an action.
 */
export const INSPECTOR_JS = `
(() => {
  let refreshing = false;
  let again = false;
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const response = await fetch(location.href, { headers: { accept: 'text/html' } });
      if (response.ok) {
        const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
        const next = doc.getElementById('main');
        const main = document.getElementById('main');
        const editing = main && main.contains(document.activeElement) && document.activeElement.tagName === 'INPUT';
        if (next && main && !editing) { main.replaceChildren(...next.childNodes); drawCharts(); }
        document.body.dataset.revision = String((Number(document.body.dataset.revision) || 0) + 1);
      }
    } finally {
      refreshing = false;
      if (again) { again = false; refresh(); }
    }
  }
  // Charts: each <div class="chart" data-chart="{...}"> is drawn by uPlot from the data the server put in the attribute.
  const COLORS = ['#3d8bfd', '#e0a100', '#2fb36b', '#d9534f', '#8e6bd8', '#6c757d'];
  function drawCharts() {
    if (typeof uPlot === 'undefined') return;
    for (const el of document.querySelectorAll('div.chart[data-chart]')) {
      if (el.dataset.drawn) continue;
      const spec = JSON.parse(el.dataset.chart);
      const bars = spec.type === 'bars' ? uPlot.paths.bars({ size: [0.8 / Math.max(1, spec.series.length), 40] }) : undefined;
      const series = [{}].concat(spec.series.map((s, i) => ({
        label: s.label,
        stroke: COLORS[i % COLORS.length],
        fill: spec.type === 'bars' ? COLORS[i % COLORS.length] + '99' : undefined,
        paths: spec.type === 'points' ? () => null : bars,
        points: { show: spec.type === 'points', size: 6, fill: COLORS[i % COLORS.length] },
        width: spec.type === 'points' ? 0 : 1,
      })));
      const width = Math.max(280, Math.min(560, el.clientWidth || 560));
      new uPlot({ width, height: 200, series, axes: [{}, { label: spec.yLabel, size: 60 }], legend: { show: true } }, [spec.x].concat(spec.series.map((s) => s.values)), el);
      el.dataset.drawn = '1';
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', drawCharts); else drawCharts();
  const source = new EventSource('/live');
  const badge = () => document.getElementById('live');
  source.addEventListener('change', () => refresh());
  source.addEventListener('open', () => badge()?.classList.add('on'));
  source.addEventListener('error', () => badge()?.classList.remove('on'));
  document.addEventListener('submit', (event) => {
    const form = event.target;
    const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
    if (question && !confirm(question)) event.preventDefault();
  });
})();
`;

export const INSPECTOR_CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: .6rem 1rem; display: flex; gap: 1rem; align-items: center; }
header a { color: #cfe0ff; text-decoration: none; } header .brand { font-weight: 700; color: #fff; }
.live { margin-left: auto; font-size: 12px; opacity: .5; } .live.on { opacity: 1; color: #7ee2a8; }
main { padding: 1rem 1.5rem; max-width: 1200px; }
section { background: #fff; border: 1px solid #e1e4ea; border-radius: 6px; padding: .4rem 1rem .8rem; margin-bottom: 1rem; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #eceef2; vertical-align: top; }
pre.json { background: #f2f4f7; padding: .5rem; border-radius: 4px; white-space: pre-wrap; word-break: break-word; margin: .2rem 0; }
.status { padding: 1px 6px; border-radius: 8px; font-size: 12px; background: #e6e9ef; }
.status-waiting { background: #fff2c6; } .status-running { background: #d6e8ff; } .status-finished { background: #d8f5e2; }
.status-failed { background: #ffd9d6; } .status-cancelled { background: #e2e2e2; }
dl { display: grid; grid-template-columns: 8rem 1fr; gap: .2rem 1rem; } dt { color: #66708a; } dd { margin: 0; }
.message { background: #e8f3ff; border-left: 4px solid #3d8bfd; padding: .5rem 1rem; margin: 1rem 1.5rem 0; }
form.action { display: inline-block; margin: .2rem .5rem .2rem 0; } .filters label { margin-right: .8rem; }
#timeline li { margin-bottom: .3rem; } .text { white-space: pre-wrap; word-break: break-word; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; } .charts figure { margin: 0; min-width: 280px; flex: 1 1 30%; }
.charts figcaption { color: #66708a; font-size: 12px; } .note { color: #66708a; font-size: 12px; }
`;
