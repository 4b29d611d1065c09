// #/activities: the tenant's activities, one page of the API's cursor at a time, and
// #/activities/ID: one activity with its progress and its per-round loss and metric charts.
import { api, apiAll, withQuery } from './api.js';
import { lineChart } from './charts.js';
import { ACTIVITY_STATES, TERMINAL, badge, cell, coalesce, el, setChildren, facts, fmtJoules, fmtNum, fmtSeconds, fmtTime, link, metricName, table } from './dom.js';
import { CursorPager, PAGE_SIZE } from './pager.js';

// Kept across visits, so that coming back from an activity shows the same page and filter.
const listState = { pager: new CursorPager(), filter: '' };

// "accuracy 0.975" from a round report, or '' before the first round.
function latestMetric(report, task) {
  const m = report && report.metrics && report.metrics[task];
  if (!m) return '';
  const name = metricName(report.metrics, task);
  return name ? `${name} ${fmtNum(m[name])}` : `loss ${fmtNum(m.loss)}`;
}

function cancelButton(a, ctx, after) {
  if (TERMINAL.has(a.state)) return null;
  const b = el('button', { className: 'danger small', text: 'Cancel', attrs: { type: 'button', 'aria-label': `Cancel activity ${a.name || a.id}` } });
  b.addEventListener('click', async () => {
    if (!window.confirm(`Cancel activity "${a.name || a.id}"?`)) return;
    b.disabled = true;
    try {
      const now = await api('DELETE', `/v1/activities/${encodeURIComponent(a.id)}`);
      ctx.say(`Activity ${a.id} is now ${now.state}.`);
    } catch (err) {
      ctx.showError(err);
    }
    after();
  });
  return b;
}

function row(a, ctx, refresh) {
  const p = a.progress || {};
  const stateTd = el('td', {}, badge(a.state, ACTIVITY_STATES), a.state_reason ? el('div', { className: 'reason', text: a.state_reason }) : null);
  const bar = el('progress', { attrs: { max: a.rounds || 1, value: p.round || 0 } });
  return el('tr', { dataset: { id: a.id } },
    el('td', { className: 'name' }, link(a.name || a.id, 'activities', a.id)),
    cell(a.id, 'mono'), cell(a.dataset), cell(a.task), stateTd,
    el('td', { className: 'num nowrap' }, bar, el('span', { className: 'round', text: ` ${p.round ?? 0} / ${a.rounds}` })),
    cell(latestMetric(p.latest, a.task), 'num metric'),
    el('td', { className: 'nowrap' }, el('time', { attrs: { datetime: a.created_at || '' }, text: fmtTime(a.created_at) })),
    el('td', {}, cancelButton(a, ctx, refresh)));
}

export function mountList(view, ctx) {
  const { pager } = listState;
  const filter = el('select', { attrs: { id: 'state-filter' } },
    el('option', { attrs: { value: '' }, text: 'all' }), ACTIVITY_STATES.map((s) => el('option', { attrs: { value: s }, text: s })));
  filter.value = listState.filter;
  const newer = el('button', { className: 'secondary', text: '← Newer', attrs: { type: 'button', id: 'newer' } });
  const older = el('button', { className: 'secondary', text: 'Older →', attrs: { type: 'button', id: 'older' } });
  const info = el('span', { className: 'updated', attrs: { id: 'page-info' } });
  const { table: t, body } = table([['Name'], ['ID'], ['Dataset'], ['Task'], ['State'], ['Round', 'num'], ['Latest metric', 'num'], ['Created'], ['']]);
  body.id = 'rows';
  const empty = el('p', { className: 'empty', text: 'No activities.', attrs: { hidden: '' } });
  view.append(
    el('div', { className: 'toolbar' }, el('h2', { text: 'Activities' }), el('label', { text: 'State', attrs: { for: 'state-filter' } }), filter),
    t, empty, el('div', { className: 'pager' }, newer, older, info));

  let generation = 0;
  async function refresh() {
    const gen = ++generation;
    try {
      const page = await api('GET', withQuery('/v1/activities', { state: listState.filter, ...pager.params() }));
      if (gen !== generation) return;  // a newer request replaced this one
      pager.next = page.next_cursor || null;
      body.replaceChildren(...page.items.map((a) => row(a, ctx, refresh)));
      empty.hidden = page.items.length > 0;
      newer.disabled = !pager.hasNewer;
      older.disabled = !pager.hasOlder;
      info.textContent = `page ${pager.number} · ${page.items.length} shown, ${PAGE_SIZE} per page · updated ${new Date().toLocaleTimeString()}`;
      ctx.showError(null);
    } catch (err) {
      if (gen === generation) ctx.showError(err);
    }
  }
  filter.addEventListener('change', () => { listState.filter = filter.value; pager.reset(); refresh(); });
  newer.addEventListener('click', () => { pager.newer(); refresh(); });
  older.addEventListener('click', () => { pager.older(); refresh(); });

  const soon = coalesce(refresh, 1000);
  return {
    refresh,
    onEvent(e) {
      // A new activity shows on the first page; a change shows where the activity is listed.
      const shown = e.activity_id && body.querySelector(`tr[data-id="${CSS.escape(e.activity_id)}"]`);
      const created = e.type === 'activity.state' && e.previous == null && !pager.hasNewer;
      if (shown || created) soon();
    },
    dispose() { soon.cancel(); generation++; },
  };
}

function roundsCharts(a, rounds) {
  const metric = rounds.map((r) => metricName(r.metrics, a.task)).find((m) => m) || null;
  const at = (r, key) => (r.metrics && r.metrics[a.task] ? r.metrics[a.task][key] : NaN);
  const loss = lineChart({
    caption: 'Loss per round',
    series: [
      { name: 'test loss', points: rounds.map((r) => [r.round, at(r, 'loss')]), cls: 's0' },
      { name: 'train loss', points: rounds.map((r) => [r.round, r.train_loss]), cls: 's1' },
    ],
  });
  loss.id = 'loss-chart';
  const charts = [loss];
  if (metric) {
    const m = lineChart({ caption: `${metric} per round (test)`, series: [{ name: metric, points: rounds.map((r) => [r.round, at(r, metric)]), cls: 's2' }] });
    m.id = 'metric-chart';
    charts.push(m);
  }
  return el('div', { className: 'charts' }, charts);
}

function roundsTable(a, rounds) {
  const last = rounds.slice(-10).reverse();
  const metric = rounds.map((r) => metricName(r.metrics, a.task)).find((m) => m);
  const { table: t, body } = table([['Round', 'num'], ['Group'], ['Device'], ['Clients', 'num'], ['Seconds', 'num'], ['Train loss', 'num'], ['Test loss', 'num'], [metric || 'Metric', 'num']]);
  body.id = 'round-rows';
  for (const r of last) {
    const m = (r.metrics && r.metrics[a.task]) || {};
    body.append(el('tr', { dataset: { round: r.round } },
      cell(r.round, 'num'), el('td', {}, r.group_id ? link(r.group_id, 'groups', r.group_id) : '–'), cell(r.device),
      cell(`${r.clients_reported ?? '?'} / ${r.clients_sampled ?? '?'}`, 'num'), cell(fmtNum(r.seconds, 2), 'num'),
      cell(fmtNum(r.train_loss, 4), 'num'), cell(fmtNum(m.loss, 4), 'num'), cell(metric ? fmtNum(m[metric], 4) : '–', 'num')));
  }
  return el('section', {}, el('h3', { text: rounds.length > 10 ? 'Last 10 rounds' : 'Rounds' }), t);
}

// Client clustering: each cluster of clients as the latest round left it, with its own metric
// and, once the activity has succeeded, where its model downloads.
function clustersTable(a) {
  const metric = a.clusters.map((c) => metricName(c.metrics, a.task)).find((m) => m);
  const { table: t, body } = table([['Cluster', 'num'], ['Clients'], ['Samples', 'num'], ['Reported', 'num'],
    ['Test loss', 'num'], [metric || 'Metric', 'num'], ['Model']]);
  body.id = 'cluster-rows';
  a.clusters.forEach((c, i) => {
    const m = (c.metrics && c.metrics[a.task]) || {};
    const clients = c.clients.length > 12 ? `${c.clients.slice(0, 12).join(', ')}, …` : c.clients.join(', ');
    body.append(el('tr', { dataset: { cluster: i } },
      cell(i, 'num'), cell(`${c.size}: ${clients}`), cell(c.samples, 'num'), cell(c.clients_reported, 'num'),
      cell(fmtNum(m.loss, 4), 'num'), cell(metric ? fmtNum(m[metric], 4) : '–', 'num'),
      el('td', { className: 'mono', text: c.model_url || '–' })));
  });
  return el('section', {}, el('h3', { text: `Clusters of clients (${a.clusters.length})` }), t);
}

export function mountDetail(view, ctx, id) {
  let generation = 0;
  async function refresh() {
    const gen = ++generation;
    try {
      const path = `/v1/activities/${encodeURIComponent(id)}`;
      const [a, items] = await Promise.all([api('GET', path), apiAll(`${path}/rounds`)]);
      if (gen !== generation) return;
      const p = a.progress || {};
      const e = a.energy || {};
      setChildren(view, 
        el('p', { className: 'crumbs' }, link('Activities', 'activities'), ' / ', a.id),
        el('div', { className: 'toolbar' }, el('h2', { text: a.name || a.id }), el('span', { attrs: { id: 'state' } }, badge(a.state, ACTIVITY_STATES)),
          cancelButton(a, ctx, refresh)),
        a.state_reason ? el('p', { className: 'reason', text: a.state_reason }) : null,
        el('div', { className: 'progress-line' },
          el('progress', { attrs: { id: 'progress', max: a.rounds || 1, value: p.round || 0 } }),
          el('span', { attrs: { id: 'progress-text' }, text: `round ${p.round ?? 0} of ${a.rounds}` }),
          el('span', { className: 'muted', text: ` · ${fmtSeconds(p.elapsed_seconds)}${p.device ? ` on ${p.device}` : ''}` })),
        facts([
          ['ID', el('span', { className: 'mono', text: a.id })],
          ['Data set / task', `${a.dataset} / ${a.task}`],
          ['Clients', `${a.clients_per_round} of ${a.clients} per round, ${a.local_epochs} local epoch(s)`],
          ['Aggregator', a.aggregator],
          ['Groups', a.groups && a.groups.length ? a.groups.flatMap((g, i) => [i ? ' → ' : null, link(g, 'groups', g)]) : '–'],
          ['Energy', `${fmtJoules(e.joules)} · ${fmtNum(e.grams_co2e, 2)} g CO2e · ${fmtSeconds(e.device_seconds)} device time`],
          a.paused ? ['Paused', a.paused] : null,
          a.waiting ? ['Waiting', `${a.waiting} (${a.waiting_reason})`] : null,
          ['Created', fmtTime(a.created_at)],
          p.model_url ? ['Model', el('span', { className: 'mono', text: p.model_url })] : null,
        ]),
        roundsCharts(a, items),
        a.clusters && a.clusters.length ? clustersTable(a) : null,
        items.length ? roundsTable(a, items) : null);
      view.dataset.rounds = String(items.length);
      ctx.showError(null);
    } catch (err) {
      if (gen === generation) ctx.showError(err);
    }
  }
  const soon = coalesce(refresh, 500);
  return {
    refresh,
    // Its own events, and its tenant's budget running out or being raised (the Paused line).
    onEvent(e) { if (e.activity_id === id || e.type === 'budget.changed') soon(); },
    dispose() { soon.cancel(); generation++; },
  };
}
