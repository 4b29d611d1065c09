// Hand-written SVG charts: a line chart (per-round loss and metric, device power), a bar
// chart (usage per day) and a heat map (affinity). Labels are set as text, never as markup.
// Each chart is a <figure> with a caption; the SVG scales to its container's width.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function text(x, y, content, attrs = {}) {
  const t = svg('text', { x, y, ...attrs });
  t.textContent = content;
  return t;
}

function tooltip(content) {
  const t = svg('title');
  t.textContent = content;
  return t;
}

function figure(caption, chart, legend) {
  const f = document.createElement('figure');
  f.className = 'chart';
  const c = document.createElement('figcaption');
  c.textContent = caption;
  f.append(c, chart);
  if (legend) f.append(legend);
  return f;
}

// About `n` round numbers spanning [min, max].
export function ticks(min, max, n = 5) {
  if (!(max > min)) { min -= 1; max += 1; }
  const raw = (max - min) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const out = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[0] > min) out.unshift(Number((out[0] - step).toPrecision(12)));
  if (out[out.length - 1] < max) out.push(Number((out[out.length - 1] + step).toPrecision(12)));
  return out;
}

const tickLabel = (v) => (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(1) : String(Number(v.toPrecision(4))));

const W = 640;
const H = 260;
const PAD = { left: 56, right: 16, top: 12, bottom: 36 };

function axes(g, xs, ys, sx, sy, xLabel) {
  for (const v of ys) {
    g.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: sy(v), y2: sy(v), class: 'grid' }));
    g.append(text(PAD.left - 6, sy(v) + 4, tickLabel(v), { 'text-anchor': 'end', class: 'tick' }));
  }
  for (const v of xs) g.append(text(sx(v), H - PAD.bottom + 16, tickLabel(v), { 'text-anchor': 'middle', class: 'tick' }));
  g.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom, class: 'axis' }));
  if (xLabel) g.append(text((PAD.left + W - PAD.right) / 2, H - 4, xLabel, { 'text-anchor': 'middle', class: 'axis-label' }));
}

// series: [{name, points: [[x, y], …], cls}] with cls one of s0…s3 (colours in style.css).
// Points with a non-finite y are left out. The <svg> carries data-points (the most points of
// a series) and each series' <path> data-series=name, for tests and for people's tools.
export function lineChart({ caption, series, xLabel = 'round', yFormat = (v) => v.toFixed(4), integerX = true }) {
  const clean = series.map((s) => ({ ...s, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) }));
  const all = clean.flatMap((s) => s.points);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': caption, class: 'line-chart' });
  chart.dataset.points = String(Math.max(0, ...clean.map((s) => s.points.length)));
  if (!all.length) {
    chart.append(text(W / 2, H / 2, 'no rounds yet', { 'text-anchor': 'middle', class: 'empty-label' }));
    return figure(caption, chart);
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  const ys = ticks(Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1])));
  const [y0, y1] = [ys[0], ys[ys.length - 1]];
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  let xs = ticks(x0, x1, 6).filter((v) => v >= x0 && v <= x1);
  if (integerX) xs = xs.filter((v) => Number.isInteger(v));
  const g = svg('g');
  axes(g, xs, ys, sx, sy, xLabel);
  for (const s of clean) {
    if (!s.points.length) continue;
    const d = s.points.map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
    const path = svg('path', { d, class: `series ${s.cls || 's0'}` });
    path.dataset.series = s.name;
    g.append(path);
    if (s.points.length <= 60) {
      for (const [x, y] of s.points) {
        g.append(svg('circle', { cx: sx(x).toFixed(1), cy: sy(y).toFixed(1), r: 3, class: `dot ${s.cls || 's0'}` },
          tooltip(`${s.name} · ${xLabel} ${x}: ${yFormat(y)}`)));
      }
    }
  }
  chart.append(g);
  const legend = document.createElement('ul');
  legend.className = 'legend';
  for (const s of clean) {
    const li = document.createElement('li');
    li.className = s.cls || 's0';
    const last = s.points[s.points.length - 1];
    li.textContent = last ? `${s.name} (last ${yFormat(last[1])})` : s.name;
    legend.append(li);
  }
  return figure(caption, chart, legend);
}

// bars: [{label, value, title}]; the y axis starts at 0.
export function barChart({ caption, bars, yFormat = (v) => String(v) }) {
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': caption, class: 'bar-chart' });
  chart.dataset.bars = String(bars.length);
  if (!bars.length) {
    chart.append(text(W / 2, H / 2, 'nothing in this period', { 'text-anchor': 'middle', class: 'empty-label' }));
    return figure(caption, chart);
  }
  const ys = ticks(0, Math.max(...bars.map((b) => b.value), 0));
  const y1 = ys[ys.length - 1];
  const sy = (y) => H - PAD.bottom - (y / y1) * (H - PAD.top - PAD.bottom);
  const slot = (W - PAD.left - PAD.right) / bars.length;
  const g = svg('g');
  for (const v of ys) {
    g.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: sy(v), y2: sy(v), class: 'grid' }));
    g.append(text(PAD.left - 6, sy(v) + 4, tickLabel(v), { 'text-anchor': 'end', class: 'tick' }));
  }
  const every = Math.ceil(bars.length / 10);  // at most ~10 labels under the bars
  bars.forEach((b, i) => {
    const x = PAD.left + i * slot + slot * 0.15;
    const rect = svg('rect', { x: x.toFixed(1), y: sy(b.value).toFixed(1), width: (slot * 0.7).toFixed(1),
      height: Math.max(0, sy(0) - sy(b.value)).toFixed(1), class: 'bar' }, tooltip(b.title || `${b.label}: ${yFormat(b.value)}`));
    rect.dataset.label = b.label;
    g.append(rect);
    if (i % every === 0) g.append(text(x + slot * 0.35, H - PAD.bottom + 16, b.label, { 'text-anchor': 'middle', class: 'tick' }));
  });
  g.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: sy(0), y2: sy(0), class: 'axis' }));
  chart.append(g);
  return figure(caption, chart);
}

// A diverging colour for v in [-max, max]: blue above 0 (helps), red below (hurts).
function heat(v, max) {
  if (v == null || !Number.isFinite(v)) return '#e9ebef';
  const t = max > 0 ? Math.min(1, Math.abs(v) / max) : 0;
  const [r, g, b] = v >= 0 ? [36, 87, 197] : [179, 38, 30];
  const mix = (c) => Math.round(255 + (c - 255) * t);
  return `rgb(${mix(r)},${mix(g)},${mix(b)})`;
}

// labels: row/column names; matrix[i][j] (null = not measured). Each cell is a <g class=cell>
// with data-row, data-col and its value as text (2 decimals) and in its tooltip.
export function heatMap({ caption, labels, matrix, format = (v) => v.toFixed(2) }) {
  const n = labels.length;
  const cellSize = Math.max(28, Math.min(56, Math.floor(420 / Math.max(1, n))));
  const left = 150;
  const top = 24;
  const size = left + n * cellSize + 8;
  const height = top + n * cellSize + 8;
  const chart = svg('svg', { viewBox: `0 0 ${size} ${height}`, width: size, height, role: 'img', 'aria-label': caption, class: 'heat-map' });
  chart.dataset.cells = String(n * n);
  const max = Math.max(0, ...matrix.flat().filter((v) => v != null && Number.isFinite(v)).map(Math.abs));
  labels.forEach((label, i) => {
    chart.append(text(left - 6, top + i * cellSize + cellSize / 2 + 4, label, { 'text-anchor': 'end', class: 'tick' }));
    chart.append(text(left + i * cellSize + cellSize / 2, top - 8, String(i + 1), { 'text-anchor': 'middle', class: 'tick' }));
  });
  for (let i = 0; i < n; ++i) {
    for (let j = 0; j < n; ++j) {
      const v = matrix[i] ? matrix[i][j] : null;
      const has = v != null && Number.isFinite(v);
      const g = svg('g', { class: 'cell' });
      g.dataset.row = String(i);
      g.dataset.col = String(j);
      g.append(svg('rect', { x: left + j * cellSize, y: top + i * cellSize, width: cellSize - 2, height: cellSize - 2, fill: heat(v, max), class: 'heat' }));
      const strong = has && max > 0 && Math.abs(v) / max > 0.55;
      g.append(text(left + j * cellSize + cellSize / 2 - 1, top + i * cellSize + cellSize / 2 + 3, has ? format(v) : '–',
        { 'text-anchor': 'middle', class: strong ? 'cell-label strong' : 'cell-label' }));
      g.append(tooltip(`${labels[i]} → ${labels[j]}: ${has ? format(v) : 'not measured'}`));
      chart.append(g);
    }
  }
  const note = document.createElement('p');
  note.className = 'hint';
  note.textContent = 'Row i, column j: how much a step on task i lowers task j\'s loss (blue helps, red hurts). Columns are numbered as the rows.';
  return figure(caption, chart, note);
}
