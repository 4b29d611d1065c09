// DOM and formatting helpers shared by the pages. Server strings reach the DOM only as text
// (textContent or text nodes), never as HTML, so a name like "<img onerror=…>" stays text.

// el('td', {className: 'num', text: '3'}, child, …): a new element. Props: className, text,
// title, href (for <a>), dataset {k: v}, attrs {name: value}, on {event: handler}. Children
// may be nodes, strings (become text), null/undefined (skipped) or arrays of those.
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  if (props.className) e.className = props.className;
  if (props.text != null) e.textContent = String(props.text);
  if (props.title != null) e.title = String(props.title);
  if (props.href != null) e.setAttribute('href', props.href);
  for (const [k, v] of Object.entries(props.dataset || {})) e.dataset[k] = String(v);
  for (const [k, v] of Object.entries(props.attrs || {})) e.setAttribute(k, String(v));
  for (const [k, v] of Object.entries(props.on || {})) e.addEventListener(k, v);
  append(e, children);
  return e;
}

// Replaces parent's children with `children` (as for el(): nulls skipped, arrays flattened).
export function setChildren(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

function append(parent, children) {
  for (const c of children) {
    if (c == null) continue;
    if (Array.isArray(c)) append(parent, c);
    else parent.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// core/activity.h's states; only known names become CSS classes.
export const ACTIVITY_STATES = ['queued', 'consolidating', 'splitting', 'training', 'succeeded', 'failed', 'cancelled'];
export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
export const GROUP_PHASES = ['consolidating', 'training', 'split', 'done', 'failed'];
export const DEVICE_STATES = ['idle', 'busy', 'draining', 'drained'];

// A coloured pill for a state; `known` lists the values that have a colour.
export function badge(value, known) {
  const cls = known.includes(value) ? value : 'unknown';
  return el('span', { className: `badge state-${cls}`, text: value });
}

// Link to a page of the dashboard: '#/activities/act_…'. Ids are URI-encoded.
export function link(text, ...path) {
  return el('a', { href: `#/${path.map(encodeURIComponent).join('/')}`, text });
}

export function fmtNum(x, digits = 3) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';
}

// Joules with a unit people read: 512.3 J, 14.20 kJ, 3.10 MJ.
export function fmtJoules(j) {
  if (typeof j !== 'number' || !Number.isFinite(j)) return '–';
  const a = Math.abs(j);
  if (a >= 1e6) return `${(j / 1e6).toFixed(2)} MJ`;
  if (a >= 1e3) return `${(j / 1e3).toFixed(2)} kJ`;
  return `${j.toFixed(1)} J`;
}

export function fmtSeconds(s) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '–';
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function fmtTime(iso) {
  return iso && !Number.isNaN(Date.parse(iso)) ? new Date(iso).toLocaleString() : String(iso || '–');
}

// The task's metric other than loss ("accuracy", "iou", "mse") in a round's metrics, or null.
export function metricName(metrics, task) {
  const m = metrics && metrics[task];
  return m ? Object.keys(m).find((k) => k !== 'loss') || null : null;
}

// Wraps fn so that a burst of calls runs it once: at once when idle, then at most once per
// `ms` (the last call of a burst is never lost). For refreshes driven by events.
export function coalesce(fn, ms) {
  let timer = null;
  let last = 0;
  let pending = false;
  const run = () => {
    timer = null;
    pending = false;
    last = Date.now();
    fn();
  };
  const wrapped = () => {
    if (timer) { pending = true; return; }
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(run, wait);
  };
  wrapped.cancel = () => { if (timer) clearTimeout(timer); timer = null; pending = false; };
  wrapped.pending = () => pending || timer !== null;
  return wrapped;
}

// A table with a header row; returns {table, body}. `columns` are [label, className?].
export function table(columns) {
  const body = el('tbody');
  const head = el('tr', {}, columns.map(([label, cls]) => el('th', { attrs: { scope: 'col' }, className: cls || '', text: label })));
  const t = el('table', {}, el('thead', {}, head), body);
  return { table: el('div', { className: 'table-wrap' }, t), body };
}

export function cell(text, className) {
  return el('td', { className: className || '', text: text == null ? '' : text });
}

// <dl> of [label, value] pairs; a value may be a node or text.
export function facts(pairs) {
  return el('dl', { className: 'facts' },
    pairs.filter((p) => p).map(([k, v]) => [el('dt', { text: k }), el('dd', {}, v == null ? '–' : v)]));
}
