// #/usage: the tenant's device time, energy and grams CO2e per UTC day (the last 30 days,
// GET /v1/usage's default). The admin picks a tenant first. Finished rounds refresh it.
import { api, withQuery } from './api.js';
import { barChart } from './charts.js';
import { cell, coalesce, el, fmtJoules, fmtNum, fmtSeconds, table } from './dom.js';

const state = { tenant: '' };  // the admin's choice, kept across visits

// Every day from u.from to u.to (UTC), with 0 J on the days the API leaves out (no use), so
// the chart is a time line.
function everyDay(u) {
  const used = new Map(u.days.map((d) => [d.date, d]));
  const out = [];
  const end = Date.parse(`${u.to}T00:00:00Z`);
  for (let t = Date.parse(`${u.from}T00:00:00Z`); t <= end && out.length <= 366; t += 86400000) {
    const date = new Date(t).toISOString().slice(0, 10);
    out.push(used.get(date) || { date, joules: 0 });
  }
  return out;
}

export function mount(view, ctx) {
  const admin = ctx.me && ctx.me.kind === 'admin';
  const picker = admin ? el('select', { attrs: { id: 'tenant' } }) : null;
  const content = el('div');
  view.append(el('div', { className: 'toolbar' }, el('h2', { text: 'Usage by day' }),
    picker ? [el('label', { text: 'Tenant', attrs: { for: 'tenant' } }), picker] : null), content);
  if (picker) picker.addEventListener('change', () => { state.tenant = picker.value; refresh(); });

  let generation = 0;
  async function refresh() {
    const gen = ++generation;
    try {
      if (picker) {
        const tenants = (await api('GET', '/v1/tenants')).items || [];
        if (gen !== generation) return;
        if (!tenants.some((t) => t.id === state.tenant)) state.tenant = tenants.length ? tenants[0].id : '';
        picker.replaceChildren(...tenants.map((t) => el('option', { attrs: { value: t.id }, text: `${t.name} (${t.id})` })));
        picker.value = state.tenant;
        if (!state.tenant) { content.replaceChildren(el('p', { className: 'empty', text: 'No tenants.' })); return; }
      }
      const u = await api('GET', withQuery('/v1/usage', { tenant: admin ? state.tenant : null }));
      if (gen !== generation) return;
      const { table: t, body } = table([['Day (UTC)'], ['Device time', 'num'], ['Energy', 'num'], ['CO2e', 'num'], ['Work units', 'num']]);
      body.id = 'rows';
      const line = (label, d, cls) => el('tr', { className: cls || '', dataset: { date: label } }, cell(label),
        cell(fmtSeconds(d.device_seconds), 'num'), cell(fmtJoules(d.joules), 'num energy'), cell(`${fmtNum(d.grams_co2e, 2)} g`, 'num'), cell(d.work_units, 'num'));
      for (const d of u.days) body.append(line(d.date, d));
      body.append(line('total', u.total, 'total'));
      const c = u.carbon || {};
      content.replaceChildren(
        el('p', { className: 'muted', text: `${u.from} to ${u.to}, days with use only.` }),
        barChart({ caption: 'Energy per day (kJ)', bars: everyDay(u).map((d) => ({ label: d.date.slice(5), value: d.joules / 1000, title: `${d.date}: ${fmtJoules(d.joules)}` })), yFormat: (v) => `${v.toFixed(2)} kJ` }),
        t,
        el('p', { className: 'hint', text: `Carbon intensity: ${c.source || '?'}${c.g_per_kwh != null ? `, ${c.g_per_kwh} g/kWh` : ''}${c.note ? ` (${c.note})` : ''}.` }));
      ctx.showError(null);
    } catch (err) {
      if (gen === generation) ctx.showError(err);
    }
  }
  const soon = coalesce(refresh, 5000);
  return {
    refresh,
    onEvent(e) { if (e.type === 'round.finished') soon(); },
    dispose() { soon.cancel(); generation++; },
  };
}
