// #/devices: every device with its state, work unit, live power and energy. Power is a meter
// reading, not an event, so this page reads /v1/devices every SAMPLE_MS while it is open and
// draws each device's power over the last HISTORY samples; device.changed and round.finished
// events refresh it at once.
import { api } from './api.js';
import { lineChart } from './charts.js';
import { DEVICE_STATES, badge, cell, coalesce, el, fmtJoules, fmtNum, link, table } from './dom.js';

const SAMPLE_MS = 2000;
const HISTORY = 60;

export function mount(view, ctx) {
  const history = new Map();  // device name → [[seconds since open, watts], …]
  const opened = Date.now();
  const { table: t, body } = table([['Device'], ['Kind'], ['State'], ['Work unit'], ['Power', 'num'], ['Energy since start', 'num'], ['Meter'], ['Power limit', 'num']]);
  body.id = 'rows';
  const policy = el('p', { className: 'muted', attrs: { id: 'policy' } });
  const charts = el('div', { className: 'charts', attrs: { id: 'power-charts' } });
  view.append(el('div', { className: 'toolbar' }, el('h2', { text: 'Devices' })), policy, t,
    el('h3', { text: `Power, sampled every ${SAMPLE_MS / 1000} s while this page is open` }), charts);

  let generation = 0;
  async function refresh() {
    const gen = ++generation;
    try {
      const d = await api('GET', '/v1/devices');
      if (gen !== generation) return;
      const now = (Date.now() - opened) / 1000;
      body.replaceChildren(...d.items.map((dev) => {
        const h = history.get(dev.name) || [];
        h.push([now, dev.power_watts]);
        if (h.length > HISTORY) h.shift();
        history.set(dev.name, h);
        const wu = dev.work_unit;
        const lim = dev.power_limit_watts;
        return el('tr', { dataset: { name: dev.name } },
          cell(dev.name, 'mono'), cell(dev.kind), el('td', {}, badge(dev.state, DEVICE_STATES)),
          el('td', {}, wu ? [link(wu.group_id, 'groups', wu.group_id), wu.round != null ? ` round ${wu.round}` : ''] : '–'),
          cell(`${fmtNum(dev.power_watts, 1)} W`, 'num power'), cell(fmtJoules(dev.energy_joules), 'num energy'),
          cell(dev.profile ? `${dev.meter} (${dev.profile})` : dev.meter),
          cell(lim && lim.current != null ? `${fmtNum(lim.current, 0)} W (${fmtNum(lim.min, 0)}–${fmtNum(lim.max, 0)})` : '–', 'num'));
      }));
      const p = d.policy;
      policy.textContent = p ? `Placement policy: ${p.name} (docs/scheduling.md)` : '';
      charts.replaceChildren(...d.items.map((dev) => lineChart({
        caption: `${dev.name} power (W)`, xLabel: 'seconds', integerX: false, yFormat: (v) => `${v.toFixed(1)} W`,
        series: [{ name: dev.name, points: history.get(dev.name) || [], cls: 's0' }],
      })));
      ctx.showError(null);
    } catch (err) {
      if (gen === generation) ctx.showError(err);
    }
  }
  const timer = setInterval(() => { if (document.visibilityState === 'visible') refresh(); }, SAMPLE_MS);
  const soon = coalesce(refresh, 500);
  return {
    refresh,
    onEvent(e) { if (e.type === 'device.changed' || e.type === 'round.finished') soon(); },
    dispose() { clearInterval(timer); soon.cancel(); generation++; },
  };
}
