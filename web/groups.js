// #/groups: the groups the caller's activities train in, a page at a time, and #/groups/ID:
// one group with its affinity heat map, its split decision and its merge/split history as a
// tree (the lineage from the merged root down through every split).
import { api, withQuery } from './api.js';
import { heatMap } from './charts.js';
import { GROUP_PHASES, badge, cell, coalesce, el, setChildren, facts, fmtNum, fmtTime, link, table } from './dom.js';
import { CursorPager, PAGE_SIZE } from './pager.js';

const listState = { pager: new CursorPager() };
const MAX_TREE_NODES = 64;  // a lineage is a handful of groups; this bounds a runaway walk

// The list's last column: why a live group waits (its code; the sentence on hover), else why it ended.
const waitingCell = (g) => (g.waiting_reason
  ? el('td', { text: g.waiting_reason, attrs: { title: g.waiting } })
  : cell(g.reason || ''));
const tasksOf = (g) => g.activities.map((m) => m.task).concat(g.other_activities ? [`+${g.other_activities} other`] : []).join(', ');

export function mountList(view, ctx) {
  const { pager } = listState;
  const newer = el('button', { className: 'secondary', text: '← Newer', attrs: { type: 'button', id: 'newer' } });
  const older = el('button', { className: 'secondary', text: 'Older →', attrs: { type: 'button', id: 'older' } });
  const info = el('span', { className: 'updated', attrs: { id: 'page-info' } });
  const { table: t, body } = table([['ID'], ['Phase'], ['Policy'], ['Round', 'num'], ['Parent'], ['Tasks'], ['Device'], ['Note']]);
  body.id = 'rows';
  const empty = el('p', { className: 'empty', text: 'No groups yet: a group forms when an activity starts.', attrs: { hidden: '' } });
  view.append(el('div', { className: 'toolbar' }, el('h2', { text: 'Groups' })), t, empty, el('div', { className: 'pager' }, newer, older, info));

  let generation = 0;
  async function refresh() {
    const gen = ++generation;
    try {
      const page = await api('GET', withQuery('/v1/groups', pager.params()));
      if (gen !== generation) return;
      pager.next = page.next_cursor || null;
      body.replaceChildren(...page.items.map((g) => el('tr', { dataset: { id: g.id } },
        el('td', { className: 'mono' }, link(g.id, 'groups', g.id)), el('td', {}, badge(g.phase, GROUP_PHASES)), cell(g.policy),
        cell(`${g.round} / ${g.consolidation_rounds}`, 'num'), el('td', { className: 'mono' }, g.parent ? link(g.parent, 'groups', g.parent) : '–'),
        cell(tasksOf(g)), cell(g.device || '–'), waitingCell(g))));
      empty.hidden = page.items.length > 0;
      newer.disabled = !pager.hasNewer;
      older.disabled = !pager.hasOlder;
      info.textContent = `page ${pager.number} · ${page.items.length} shown, ${PAGE_SIZE} per page · round / consolidation rounds`;
      ctx.showError(null);
    } catch (err) {
      if (gen === generation) ctx.showError(err);
    }
  }
  newer.addEventListener('click', () => { pager.newer(); refresh(); });
  older.addEventListener('click', () => { pager.older(); refresh(); });
  const soon = coalesce(refresh, 1000);
  return {
    refresh,
    onEvent(e) { if (e.type === 'group.merged' || e.type === 'group.split' || e.type === 'round.finished') soon(); },
    dispose() { soon.cancel(); generation++; },
  };
}

// The lineage of `start`: up through parents to the root, then every group split from it.
// Returns {root, byId}; groups the caller cannot see (404) are left out.
async function lineage(start) {
  const byId = new Map([[start.id, start]]);
  let root = start;
  while (root.parent && byId.size < MAX_TREE_NODES) {
    const parent = await api('GET', `/v1/groups/${encodeURIComponent(root.parent)}`);
    byId.set(parent.id, parent);
    root = parent;
  }
  const queue = [root];
  while (queue.length && byId.size < MAX_TREE_NODES) {
    const g = queue.shift();
    for (const child of (g.split && g.split.child_groups) || []) {
      if (!byId.has(child)) {
        try {
          byId.set(child, await api('GET', `/v1/groups/${encodeURIComponent(child)}`));
        } catch (err) {
          if (err.status !== 404) throw err;
          continue;
        }
      }
      queue.push(byId.get(child));
    }
  }
  return { root, byId };
}

function treeNode(g, byId, current) {
  const children = ((g.split && g.split.child_groups) || []).filter((c) => byId.has(c));
  const from = g.parent && byId.has(g.parent) ? byId.get(g.parent).split.round : 0;
  const label = el('div', { className: g.id === current ? 'node current' : 'node', dataset: { id: g.id } },
    g.id === current ? el('strong', { className: 'mono', text: g.id }) : link(g.id, 'groups', g.id), ' ', badge(g.phase, GROUP_PHASES),
    el('div', { className: 'node-detail', text: `${g.parent ? 'split off' : 'merged'} · rounds ${from}–${g.round} · ${tasksOf(g)}` }),
    g.split ? el('div', { className: 'node-detail', text: `split at round ${g.split.round} into ${g.split.groups.length} (score ${fmtNum(g.split.score)}, ${g.split.method})` }) : null);
  return el('li', {}, label, children.length ? el('ul', {}, children.map((c) => treeNode(byId.get(c), byId, current))) : null);
}

function affinitySection(g) {
  const aff = g.affinity || { tasks: [], matrix: [] };
  if (!aff.tasks.length) {
    return el('section', { attrs: { id: 'affinity' } }, el('h3', { text: 'Task affinity' }),
      el('p', { className: 'empty', text: g.activities.length > 1 || g.other_activities ? 'Not measured yet (it is measured during consolidation).' : 'A group of one measures no affinity.' }));
  }
  const labels = aff.tasks.map((t, i) => `${i + 1}. ${t.task} ${t.activity_id === 'other' ? '(other)' : t.activity_id.slice(-6)}`);
  return el('section', { attrs: { id: 'affinity' } }, el('h3', { text: `Task affinity (mean over ${aff.rounds_measured} round(s))` }),
    heatMap({ caption: 'Affinity matrix', labels, matrix: aff.matrix }));
}

function splitSection(g) {
  if (!g.split) return null;
  const s = g.split;
  return el('section', { attrs: { id: 'split' } }, el('h3', { text: 'Split decision' }),
    el('p', { text: `At round ${s.round}, by ${s.method} search, score ${fmtNum(s.score)}:` }),
    el('ol', {}, s.groups.map((members, i) => el('li', {},
      (s.child_groups && s.child_groups[i]) ? [link(s.child_groups[i], 'groups', s.child_groups[i]), ': '] : null,
      members.flatMap((m, k) => [k ? ', ' : null, m === 'other' ? 'other' : link(m, 'activities', m)])))));
}

export function mountDetail(view, ctx, id) {
  let generation = 0;
  let ids = new Set([id]);
  async function refresh() {
    const gen = ++generation;
    try {
      const g = await api('GET', `/v1/groups/${encodeURIComponent(id)}`);
      const { root, byId } = await lineage(g);
      if (gen !== generation) return;
      ids = new Set(byId.keys());
      const { table: t, body } = table([['Activity'], ['Task'], ['Joined', 'num'], ['Left', 'num']]);
      for (const m of g.activities) {
        body.append(el('tr', {}, el('td', { className: 'mono' }, link(m.id, 'activities', m.id)), cell(m.task),
          cell(m.joined_round, 'num'), cell(m.left_round ?? '–', 'num')));
      }
      setChildren(view, 
        el('p', { className: 'crumbs' }, link('Groups', 'groups'), ' / ', g.id),
        el('div', { className: 'toolbar' }, el('h2', { className: 'mono', text: g.id }), el('span', { attrs: { id: 'phase' } }, badge(g.phase, GROUP_PHASES))),
        facts([
          ['Policy', g.policy],
          ['Round', `${g.round} (consolidation until round ${g.consolidation_rounds})`],
          ['Device', g.device || '–'],
          ['Parent', g.parent ? link(g.parent, 'groups', g.parent) : 'none (a merge)'],
          g.other_activities ? ['Other tenants', `${g.other_activities} activities`] : null,
          g.waiting ? ['Waiting', `${g.waiting} (${g.waiting_reason})`] : null,
          g.reason ? ['Reason', g.reason] : null,
          ['Created', fmtTime(g.created_at)],
        ]),
        el('section', {}, el('h3', { text: 'Activities' }), t),
        affinitySection(g),
        splitSection(g),
        el('section', { attrs: { id: 'history' } }, el('h3', { text: 'Merge and split history' }),
          el('ul', { className: 'tree' }, treeNode(root, byId, g.id))));
      ctx.showError(null);
    } catch (err) {
      if (gen === generation) ctx.showError(err);
    }
  }
  const soon = coalesce(refresh, 1000);
  return {
    refresh,
    onEvent(e) { if (ids.has(e.group_id) || (e.into && ids.has(e.into))) soon(); },
    dispose() { soon.cancel(); generation++; },
  };
}
