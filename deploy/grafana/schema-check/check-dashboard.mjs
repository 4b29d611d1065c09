#!/usr/bin/env node
// Checks a Grafana dashboard JSON file, and the provisioning files beside it, without a Grafana.
//
//   node check-dashboard.mjs [--provisioning DIR] [--keep DIR] DASHBOARD.json
//
// 1. Grafana's published schema: the dashboard's JSON text becomes the initializer of
//    `const dashboard: Dashboard = ...` in a generated .ts file, with `Dashboard` from
//    @grafana/schema (the dashboard JSON model, schema v1), and each panel's `options` and
//    `fieldConfig.defaults.custom` become initializers typed with that panel plugin's
//    `Options` / `FieldConfig` from @grafana/schema, where the package has them. TypeScript
//    (strict, no emit: what `tsc --noEmit --strict` does) then reports wrong types and, through
//    its excess-property check on object literals, misspelled fields. Errors point back at the
//    JSON file's line and the panel.
// 2. What a type cannot say: panel ids unique, gridPos inside the 24 columns and no two panels
//    overlapping, a refId on every target and unique within its panel, every datasource naming
//    a provisioned datasource uid or a datasource template variable, the dashboard's uid and
//    title set.
// 3. The provisioning YAMLs (DIR, default: provisioning/ beside the dashboard): apiVersion 1,
//    each datasource with a name, a uid and type prometheus, each dashboard provider with an
//    options.path.
//
// Prints one line per error ("FILE:LINE:COL: error: ...") and a summary. Exit status: 0 no
// error, 1 errors, 2 bad usage or unreadable files, 77 when typescript or @grafana/schema is not
// installed here (run `npm ci` in this folder, or scripts/setup). --keep DIR leaves the
// generated check.ts and tsconfig.json in DIR: `npx tsc -p DIR` reproduces part 1.
import { readFileSync, readdirSync, writeFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const schemaPackage = '@grafana/schema';
const gridColumns = 24;  // Grafana's dashboard grid is 24 columns wide
// Datasource uids Grafana itself provides (built-in annotations, mixed and dashboard queries).
const builtinDatasourceUids = new Set(['-- Grafana --', 'grafana', '-- Mixed --', '-- Dashboard --']);
// Panel plugin ids whose folder in @grafana/schema's raw/composable/ is not the id itself.
const pluginFolderAliases = { dashlist: 'dashboardlist', annolist: 'annotationslist' };

function usage(message) {
  console.error(`check-dashboard: ${message}`);
  console.error('usage: node check-dashboard.mjs [--provisioning DIR] [--keep DIR] DASHBOARD.json');
  process.exit(2);
}

const args = { provisioning: null, keep: null, dashboard: null };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--provisioning' || a === '--keep') {
    if (i + 1 >= process.argv.length) usage(`${a} needs a directory`);
    args[a.slice(2)] = process.argv[++i];
  } else if (a.startsWith('-')) {
    usage(`unknown option ${a}`);
  } else if (args.dashboard) {
    usage('one dashboard file only');
  } else {
    args.dashboard = a;
  }
}
if (!args.dashboard) usage('no dashboard file');

let ts;
try {
  const require = createRequire(import.meta.url);
  ts = require('typescript');
  require.resolve(`${schemaPackage}/package.json`);
} catch (e) {
  console.log(`SKIP: typescript or ${schemaPackage} is not installed in ${here} ` +
              `(run npm ci there, or scripts/setup): ${e.code || e.message}`);
  process.exit(77);
}
const schemaDir = join(here, 'node_modules', schemaPackage);
const schemaManifest = JSON.parse(readFileSync(join(schemaDir, 'package.json'), 'utf8'));

// ----- Errors, each with a place in a file -----

const errors = [];
const notes = [];
function report(file, line, col, where, message) {
  errors.push(`${file}:${line}:${col}: error: ${where ? where + ': ' : ''}${message}`);
}

// ----- The dashboard: text, value, and the position of every JSON path -----

const dashboardPath = args.dashboard;
let text;
let dashboard;
try {
  text = readFileSync(dashboardPath, 'utf8');
} catch (e) {
  usage(`cannot read ${dashboardPath}: ${e.message}`);
}
try {
  dashboard = JSON.parse(text);
} catch (e) {
  console.log(`${dashboardPath}: error: not valid JSON: ${e.message}`);
  process.exit(1);
}
if (dashboard === null || typeof dashboard !== 'object' || Array.isArray(dashboard)) {
  console.log(`${dashboardPath}: error: the dashboard must be a JSON object`);
  process.exit(1);
}

// TypeScript's JSON parser keeps positions: nodeAt maps a path ("panels[2].gridPos") to its
// value's node, spanAt to the text of its "key": value (where tsc puts a missing-property error).
const jsonFile = ts.parseJsonText(dashboardPath, text);
const nodeAt = new Map();
const spanAt = new Map();
(function index(node, path, start) {
  nodeAt.set(path, node);
  spanAt.set(path, [start, node.end]);
  if (ts.isObjectLiteralExpression(node)) {
    for (const p of node.properties) {
      if (!ts.isPropertyAssignment(p)) continue;
      const key = ts.isStringLiteral(p.name) || ts.isIdentifier(p.name) ? p.name.text : '?';
      index(p.initializer, path ? `${path}.${key}` : key, p.getStart(jsonFile));
    }
  } else if (ts.isArrayLiteralExpression(node)) {
    node.elements.forEach((e, i) => index(e, `${path}[${i}]`, e.getStart(jsonFile)));
  }
})(jsonFile.statements[0].expression, '', 0);

function lineCol(offset) {
  const { line, character } = jsonFile.getLineAndCharacterOfPosition(offset);
  return [line + 1, character + 1];
}
// The position of PATH, or of its nearest parent that exists.
function positionOf(path) {
  for (let p = path; ; p = p.replace(/(\.[^.[\]]*|\[\d+\])$/, '')) {
    const node = nodeAt.get(p);
    if (node) return lineCol(node.getStart(jsonFile));
    if (p === '') return [1, 1];
  }
}

// Every panel with its JSON path; a row's own panels (collapsed rows hold them) follow it.
const panels = [];
for (const [i, p] of (Array.isArray(dashboard.panels) ? dashboard.panels : []).entries()) {
  panels.push({ panel: p, path: `panels[${i}]`, nested: false });
  if (p && p.type === 'row' && Array.isArray(p.panels)) {
    p.panels.forEach((q, j) => panels.push({ panel: q, path: `panels[${i}].panels[${j}]`, nested: true }));
  }
}
function panelName(path) {
  const entry = panels.filter(e => path === e.path || path.startsWith(e.path + '.') || path.startsWith(e.path + '['))
                      .sort((a, b) => b.path.length - a.path.length)[0];
  if (!entry || !entry.panel || typeof entry.panel !== 'object') return entry ? entry.path : '';
  return `panel ${JSON.stringify(entry.panel.title ?? '')} (id ${entry.panel.id ?? '?'})`;
}
function dashboardError(path, message) {
  const [line, col] = positionOf(path);
  const panel = panelName(path);
  report(dashboardPath, line, col, [panel, path].filter(Boolean).join(' '), message);
}

// ----- The provisioning YAMLs -----

// Reads the block-style YAML subset Grafana's provisioning examples use: maps and "- " lists
// nested by indentation, plain or quoted scalars, # comments. Anything else (flow [] {},
// anchors, multi-line strings, tabs) throws rather than being guessed at.
function parseYamlSubset(source) {
  const lines = [];
  source.split('\n').forEach((raw, i) => {
    const line = stripYamlComment(raw).trimEnd();
    if (line.trim() === '' || (lines.length === 0 && line === '---')) return;
    const indent = line.length - line.trimStart().length;
    if (line.slice(0, indent).includes('\t')) throw new Error(`line ${i + 1}: tab in indentation`);
    lines.push({ n: i + 1, indent, text: line.trimStart() });
  });
  const keyRe = /^([A-Za-z0-9_.-]+|"[^"]*"|'[^']*'):(?:\s+(.*))?$/;
  const isItem = t => t === '-' || t.startsWith('- ');
  let pos = 0;
  const fail = (n, what) => { throw new Error(`line ${n}: ${what}`); };
  function scalar(s, n) {
    if (/^["']/.test(s)) {
      if (s[0] === '"') { try { return JSON.parse(s); } catch { fail(n, `bad quoted string ${s}`); } }
      if (!/^'([^']|'')*'$/.test(s)) fail(n, `bad quoted string ${s}`);
      return s.slice(1, -1).replace(/''/g, "'");
    }
    if (/^[[{|>&*!%@`]|^-(\s|$)/.test(s)) fail(n, `unsupported YAML (flow style, block scalar, anchor, tag or inline list): ${s}`);
    if (/^(true|false)$/.test(s)) return s === 'true';
    if (/^(null|~)$/.test(s)) return null;
    if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
    return s;
  }
  function block(indent) {
    return isItem(lines[pos].text) ? sequence(indent) : mapping(indent);
  }
  function mapping(indent) {
    const map = {};
    while (pos < lines.length && lines[pos].indent === indent && !isItem(lines[pos].text)) {
      const { n, text: t } = lines[pos];
      const m = t.match(keyRe);
      if (!m) fail(n, `expected "key: value", got ${t}`);
      const key = scalar(m[1], n);
      if (Object.hasOwn(map, key)) fail(n, `duplicate key ${key}`);
      pos++;
      if (m[2]) {
        map[key] = scalar(m[2], n);
      } else if (pos < lines.length && (lines[pos].indent > indent ||
                                        (lines[pos].indent === indent && isItem(lines[pos].text)))) {
        map[key] = block(lines[pos].indent);
      } else {
        map[key] = null;
      }
    }
    if (pos < lines.length && lines[pos].indent > indent) fail(lines[pos].n, 'unexpected indentation');
    return map;
  }
  function sequence(indent) {
    const list = [];
    while (pos < lines.length && lines[pos].indent === indent && isItem(lines[pos].text)) {
      const { n, text: t } = lines[pos];
      const rest = t.slice(1).trimStart();
      if (rest === '') {
        pos++;
        list.push(pos < lines.length && lines[pos].indent > indent ? block(lines[pos].indent) : null);
      } else if (keyRe.test(rest) || /^([A-Za-z0-9_.-]+|"[^"]*"|'[^']*'):$/.test(rest)) {
        // "- key: value" opens a map whose keys line up with "key".
        lines[pos] = { n, indent: indent + t.length - rest.length, text: rest };
        list.push(mapping(lines[pos].indent));
      } else {
        list.push(scalar(rest, n));
        pos++;
      }
    }
    return list;
  }
  if (lines.length === 0) return null;
  if (lines[0].indent !== 0) fail(lines[0].n, 'the document must start in column 1');
  const doc = block(0);
  if (pos < lines.length) fail(lines[pos].n, 'unexpected indentation');
  return doc;
}
function stripYamlComment(line) {
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) { if (c === quote) quote = null; continue; }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

const nonEmptyString = v => typeof v === 'string' && v.trim() !== '';
const provisioningDir = args.provisioning ?? join(dirname(dashboardPath), 'provisioning');
const provisionedTypes = new Map();  // datasource uid -> plugin type
function yamlFiles(sub) {
  const dir = join(provisioningDir, sub);
  let names;
  try {
    names = readdirSync(dir).filter(f => /\.ya?ml$/.test(f)).sort();
  } catch {
    names = [];
  }
  if (names.length === 0) report(join(provisioningDir, sub), 1, 1, '', 'no .yml/.yaml provisioning file here');
  return names.map(name => {
    const file = join(dir, name);
    try {
      return { file, doc: parseYamlSubset(readFileSync(file, 'utf8')) };
    } catch (e) {
      report(file, 1, 1, '', `cannot read it: ${e.message}`);
      return null;
    }
  }).filter(Boolean);
}
// The first line in FILE that names KEY (else FALLBACK), for the error's position.
function yamlLine(file, key, fallback) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex(l => new RegExp(`^\\s*(- )?${key}:`).test(l));
  return i >= 0 ? i + 1 : fallback ? yamlLine(file, fallback) : 1;
}
function checkProvisioningList(file, doc, listKey, checkItem) {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    report(file, 1, 1, '', 'expected a YAML map with apiVersion and ' + listKey);
    return;
  }
  if (doc.apiVersion !== 1) report(file, yamlLine(file, 'apiVersion'), 1, '', `apiVersion must be 1, is ${JSON.stringify(doc.apiVersion)}`);
  const list = doc[listKey];
  if (!Array.isArray(list) || list.length === 0) {
    report(file, yamlLine(file, listKey), 1, '', `${listKey} must be a non-empty list`);
    return;
  }
  list.forEach((item, i) => {
    const where = `${listKey}[${i}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      report(file, yamlLine(file, listKey), 1, where, 'must be a map');
      return;
    }
    checkItem(item, (key, message) => report(file, yamlLine(file, key, listKey), 1, `${where}${item.name ? ` (${item.name})` : ''}`, message));
  });
}
for (const { file, doc } of yamlFiles('datasources')) {
  checkProvisioningList(file, doc, 'datasources', (ds, fail) => {
    if (!nonEmptyString(ds.name)) fail('name', 'name must be set');
    if (!nonEmptyString(ds.uid)) fail('uid', 'uid must be set: the dashboard refers to its datasource by uid');
    if (ds.type !== 'prometheus') fail('type', `type must be prometheus (mufld exports Prometheus metrics), is ${JSON.stringify(ds.type)}`);
    if (!nonEmptyString(ds.url)) fail('url', 'url must be set');
    if (ds.access !== undefined && ds.access !== 'proxy' && ds.access !== 'direct') fail('access', `access must be proxy or direct, is ${JSON.stringify(ds.access)}`);
    if (nonEmptyString(ds.uid) && nonEmptyString(ds.type)) provisionedTypes.set(ds.uid, ds.type);
  });
}
for (const { file, doc } of yamlFiles('dashboards')) {
  checkProvisioningList(file, doc, 'providers', (provider, fail) => {
    if (!nonEmptyString(provider.name)) fail('name', 'name must be set');
    if (provider.type !== undefined && provider.type !== 'file') fail('type', `type must be file, is ${JSON.stringify(provider.type)}`);
    const path = provider.options && provider.options.path;
    if (!nonEmptyString(path)) fail('options', 'options.path must be set (the folder Grafana loads dashboard files from)');
    else if (!path.startsWith('/')) fail('path', `options.path should be absolute, is ${JSON.stringify(path)}`);
  });
}

// ----- The dashboard's structure: what a type cannot check -----

if (!nonEmptyString(dashboard.uid)) {
  dashboardError('uid', 'the dashboard uid must be set (provisioning and links find the dashboard by it)');
} else if (!/^[A-Za-z0-9_-]{1,40}$/.test(dashboard.uid)) {
  dashboardError('uid', `uid ${JSON.stringify(dashboard.uid)} must be 1 to 40 letters, digits, - or _`);
}
if (!nonEmptyString(dashboard.title)) dashboardError('title', 'the dashboard title must be set');
if (panels.length === 0) dashboardError('panels', 'the dashboard has no panels');

const ids = new Map();
const placed = [];  // top-level panels with a valid gridPos, for the overlap check
for (const { panel, path, nested } of panels) {
  if (panel === null || typeof panel !== 'object') continue;  // the type check reports it
  if (!Number.isInteger(panel.id)) {
    dashboardError(`${path}.id`, 'every panel needs an integer id');
  } else if (ids.has(panel.id)) {
    dashboardError(`${path}.id`, `id ${panel.id} is also the id of the panel at ${ids.get(panel.id)}`);
  } else {
    ids.set(panel.id, path);
  }

  const g = panel.gridPos;
  if (g === null || typeof g !== 'object') {
    dashboardError(path, 'every panel needs a gridPos');
  } else if (!['x', 'y', 'w', 'h'].every(k => Number.isInteger(g[k]))) {
    dashboardError(`${path}.gridPos`, 'gridPos x, y, w and h must be integers');
  } else if (g.x < 0 || g.y < 0 || g.w < 1 || g.h < 1 || g.x + g.w > gridColumns) {
    dashboardError(`${path}.gridPos`, `gridPos x=${g.x} w=${g.w} y=${g.y} h=${g.h} is outside the ${gridColumns}-column grid ` +
                   `(needs x >= 0, y >= 0, w >= 1, h >= 1, x + w <= ${gridColumns})`);
  } else if (!nested) {
    // A collapsed row's panels are off the grid until it opens; only the visible ones are placed.
    for (const other of placed) {
      const o = other.panel.gridPos;
      if (g.x < o.x + o.w && o.x < g.x + g.w && g.y < o.y + o.h && o.y < g.y + g.h) {
        dashboardError(`${path}.gridPos`, `gridPos x=${g.x} y=${g.y} w=${g.w} h=${g.h} overlaps ${panelName(other.path)} ` +
                       `at ${other.path} (x=${o.x} y=${o.y} w=${o.w} h=${o.h})`);
      }
    }
    placed.push({ panel, path });
  }

  if (panel.type !== 'row' && panel.targets !== undefined) {
    if (!Array.isArray(panel.targets)) {
      dashboardError(`${path}.targets`, 'targets must be a list');
    } else {
      const refIds = new Map();
      panel.targets.forEach((t, i) => {
        const tPath = `${path}.targets[${i}]`;
        if (!t || !nonEmptyString(t.refId)) {
          dashboardError(tPath, 'every target needs a refId');
        } else if (refIds.has(t.refId)) {
          dashboardError(`${tPath}.refId`, `refId ${JSON.stringify(t.refId)} is also the refId of ${refIds.get(t.refId)}`);
        } else {
          refIds.set(t.refId, tPath);
        }
      });
    }
  }
}

// Datasources: a provisioned uid, or a datasource template variable ("${NAME}", "$NAME", "[[NAME]]").
const variables = Array.isArray(dashboard.templating?.list) ? dashboard.templating.list : [];
const datasourceVariables = new Map(variables.filter(v => v && v.type === 'datasource' && nonEmptyString(v.name))
                                             .map(v => [v.name, v]));
const inputs = new Set((Array.isArray(dashboard.__inputs) ? dashboard.__inputs : []).map(i => i && i.name));
const provisionedList = [...provisionedTypes.keys()].map(u => JSON.stringify(u)).join(', ') || 'none';
function checkDatasource(ref, path) {
  if (ref === null || typeof ref !== 'object' || Array.isArray(ref)) {
    dashboardError(path, `datasource must be {"type": ..., "uid": ...} naming a provisioned uid (${provisionedList}) ` +
                   `or a datasource variable, is ${JSON.stringify(ref)}`);
    return;
  }
  const uid = ref.uid;
  if (!nonEmptyString(uid)) {
    dashboardError(path, 'datasource needs a uid');
    return;
  }
  if (builtinDatasourceUids.has(uid)) return;
  const variable = uid.match(/^\$\{([^}:]+)(?::[^}]*)?\}$|^\$(\w+)$|^\[\[(\w+)\]\]$/);
  const name = variable && (variable[1] || variable[2] || variable[3]);
  let type;
  if (name) {
    if (datasourceVariables.has(name)) {
      type = datasourceVariables.get(name).query;
    } else {
      dashboardError(`${path}.uid`, inputs.has(name)
        ? `${uid} names only an import input (__inputs), which Grafana fills in on a manual import but not when it provisions the file: ` +
          `add a datasource template variable ${name}`
        : `${uid} is not a datasource template variable of this dashboard`);
      return;
    }
  } else if (provisionedTypes.has(uid)) {
    type = provisionedTypes.get(uid);
  } else {
    dashboardError(`${path}.uid`, `datasource uid ${JSON.stringify(uid)} is neither a provisioned datasource (${provisionedList}) ` +
                   `nor a datasource template variable`);
    return;
  }
  if (ref.type !== undefined && type !== undefined && ref.type !== type) {
    dashboardError(`${path}.type`, `datasource type ${JSON.stringify(ref.type)} but ${uid} is of type ${JSON.stringify(type)}`);
  }
}
(function findDatasources(value, path) {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => findDatasources(v, `${path}[${i}]`));
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const p = path ? `${path}.${key}` : key;
    if (key === 'datasource' && path !== '') checkDatasource(v, p);
    else findDatasources(v, p);
  }
})(dashboard, '');
for (const [name, v] of datasourceVariables) {
  const types = new Set(provisionedTypes.values());
  if (!types.has(v.query)) {
    const i = variables.indexOf(v);
    dashboardError(`templating.list[${i}].query`, `datasource variable ${name} lists datasources of type ${JSON.stringify(v.query)}, ` +
                   `but no provisioned datasource has that type`);
  }
}

// ----- Grafana's published schema, through the TypeScript compiler -----

// Panel plugin id -> { specifier, hasOptions, hasFieldConfig }, from the package's exports.
const panelTypes = new Map();
for (const [key, target] of Object.entries(schemaManifest.exports)) {
  const m = key.match(/^\.\/dist\/esm\/raw\/composable\/([^/]+)\/panelcfg\/x\/\w+_types\.gen$/);
  if (!m || !target.types) continue;
  const declarations = readFileSync(join(schemaDir, target.types), 'utf8');
  panelTypes.set(m[1], {
    specifier: schemaPackage + key.slice(1),
    hasOptions: /export interface Options\b/.test(declarations),
    hasFieldConfig: /export interface FieldConfig\b/.test(declarations),
  });
}
const dashboardSpecifier = `${schemaPackage}/dist/esm/raw/dashboard/x/Dashboard_types.gen`;

// The generated file: fixed text, and slices of the JSON text copied verbatim (segments record
// where, so that an error in the .ts maps back to a line in the JSON file).
let source = '';
const segments = [];
function emit(s) { source += s; }
function emitJson(path) {
  const node = nodeAt.get(path);
  const start = node.getStart(jsonFile);
  segments.push({ tsStart: source.length, length: node.end - start, jsonStart: start, path });
  source += text.slice(start, node.end);
}
emit(`// Generated by deploy/grafana/schema-check/check-dashboard.mjs from ${dashboardPath}.
import type { Dashboard } from '${dashboardSpecifier}';
`);
const imported = new Map();  // schema folder -> TS namespace name
for (const { panel } of panels) {
  const folder = panel && typeof panel.type === 'string' &&
                 (pluginFolderAliases[panel.type] ?? panel.type.toLowerCase().replace(/[^a-z0-9]/g, ''));
  if (folder && panelTypes.has(folder) && !imported.has(folder)) {
    imported.set(folder, `panel_${folder}`);
    emit(`import type * as panel_${folder} from '${panelTypes.get(folder).specifier}';\n`);
  }
}
emit(`
// JSON has no enums: Json<T> turns the schema's string enums (ThresholdsMode, FieldColorModeId...)
// into the unions of their values, and leaves every other type as it is.
type Json<T> = T extends string ? \`\${T}\` : T extends readonly (infer U)[] ? Json<U>[] :
  T extends object ? { [K in keyof T]: Json<T[K]> } : T;
// Grafana fills what a panel leaves out of its options from the plugin's defaults, so a panel's
// options and custom field config may omit any field; what they do set must be right.
type Opts<T> = T extends string ? \`\${T}\` : T extends readonly (infer U)[] ? Opts<U>[] :
  T extends object ? { [K in keyof T]?: Opts<T[K]> } : T;
// tsc reports an object's misspelled keys only once its values' types are right. Names<T> keeps
// the keys and makes every value unknown, so the same JSON typed with it reports every unknown key
// on the first run (an error both passes report is printed once).
// (undefined, which every optional property's type includes, becomes never: else it would turn
// the whole union into unknown.)
type Names<T> = T extends undefined ? never : T extends readonly (infer U)[] ? Names<U>[] :
  T extends object ? { [K in keyof T]?: Names<T[K]> } : unknown;
// The keys Grafana's "Export for sharing externally" adds, outside the dashboard model
// (DashboardExporter.ts in Grafana); the import dialog reads them.
type ExportKeys = {
  __inputs?: Array<{ name: string; label?: string; description?: string; type: 'datasource' | 'constant';
                     pluginId?: string; pluginName?: string; value?: string }>;
  __requires?: Array<{ type: 'grafana' | 'datasource' | 'panel'; id: string; name: string; version: string }>;
  __elements?: Record<string, unknown>;
};

export const dashboard: Json<Dashboard> & ExportKeys = `);
emitJson('');
emit(';\nexport const dashboard_names: Names<Dashboard & ExportKeys> = ');
emitJson('');
emit(';\n');
for (const { panel, path } of panels) {
  const folder = panel && typeof panel.type === 'string' &&
                 (pluginFolderAliases[panel.type] ?? panel.type.toLowerCase().replace(/[^a-z0-9]/g, ''));
  if (!folder || panel.type === 'row') continue;
  const types = panelTypes.get(folder);
  if (!types) {
    notes.push(`${panelName(path)}: ${schemaPackage} has no options type for panel type ${JSON.stringify(panel.type)}; its options are not checked`);
    continue;
  }
  const name = path.replace(/\W+/g, '_');
  const checks = [['options', 'Options', `${path}.options`, types.hasOptions],
                  ['custom', 'FieldConfig', `${path}.fieldConfig.defaults.custom`, types.hasFieldConfig]];
  for (const [suffix, type, jsonPath, exists] of checks) {
    if (!exists || !nodeAt.has(jsonPath)) continue;
    for (const [kind, wrapper] of [['', 'Opts'], ['_names', 'Names']]) {
      emit(`export const ${name}${suffix}${kind}: ${wrapper}<${imported.get(folder)}.${type}> = `);
      emitJson(jsonPath);
      emit(';\n');
    }
  }
}

// skipLibCheck: the package's own declarations are Grafana's business, not this check's.
const compilerOptions = {
  strict: true, noEmit: true, target: 'es2022', module: 'esnext', moduleResolution: 'bundler',
  lib: ['es2022'], types: [], skipLibCheck: true,
};
const work = args.keep ? resolve(args.keep) : mkdtempSync(join(tmpdir(), 'mufl-grafana-check-'));
try {
  mkdirSync(work, { recursive: true });
  const checkFile = join(work, 'check.ts');
  writeFileSync(checkFile, source);
  // node_modules beside check.ts, so that `tsc -p` on the kept folder resolves the same imports.
  if (!existsSync(join(work, 'node_modules'))) symlinkSync(join(here, 'node_modules'), join(work, 'node_modules'), 'dir');
  const configFile = join(work, 'tsconfig.json');
  writeFileSync(configFile, JSON.stringify({ compilerOptions, files: ['check.ts'] }, null, 2) + '\n');

  // What `tsc -p WORK` does: read the tsconfig, type-check, emit nothing.
  const config = ts.getParsedCommandLineOfConfigFile(configFile, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: d => {
    throw new Error(ts.flattenDiagnosticMessageText(d.messageText, ' '));
  } });
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options });
  const seen = new Set();
  for (const d of [...config.errors, ...ts.getPreEmitDiagnostics(program)]) {
    // The whole chain on one line; long inline object types shortened to {...}.
    let message = ts.flattenDiagnosticMessageText(d.messageText, ' ').replace(/\s+/g, ' ');
    message = message.replace(/'\{ [^']{150,}?(?: \}|\.\.\.)'/g, "'{...}'");
    const segment = d.file && d.file.fileName === checkFile &&
                    segments.find(s => d.start >= s.tsStart && d.start < s.tsStart + s.length);
    if (segment) {
      const offset = segment.jsonStart + d.start - segment.tsStart;
      if (seen.has(`${offset} ${d.code}`)) continue;  // the same error from the Names<> pass
      seen.add(`${offset} ${d.code}`);
      // The deepest JSON path at the error, for the message.
      let best = segment.path;
      for (const [p, [start, end]] of spanAt) {
        if (p.length > best.length && p.startsWith(segment.path) && start <= offset && offset < end) best = p;
      }
      const [line, col] = lineCol(offset);
      const panel = panelName(best);
      report(dashboardPath, line, col, [panel, best].filter(Boolean).join(' '), `${message} [${schemaPackage} TS${d.code}]`);
    } else {
      const where = d.file ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : 'tsc';
      errors.push(`${where}: error: ${message} [TS${d.code}]`);
    }
  }
} finally {
  if (!args.keep) rmSync(work, { recursive: true, force: true });
}

const latestSchema = (await import(dashboardSpecifier)).defaultDashboard?.schemaVersion;
if (Number.isInteger(dashboard.schemaVersion) && latestSchema && dashboard.schemaVersion < latestSchema) {
  notes.push(`schemaVersion ${dashboard.schemaVersion} is older than ${latestSchema} (${schemaPackage} ${schemaManifest.version}): ` +
             'Grafana migrates the dashboard in memory each time it loads it');
}

// By file, then line (the checks run in turn, the report reads top to bottom).
const place = e => { const m = e.match(/^(.*?):(\d+):(\d+): /); return m ? [m[1], +m[2], +m[3]] : [e, 0, 0]; };
errors.sort((a, b) => {
  const [fa, la, ca] = place(a), [fb, lb, cb] = place(b);
  return fa < fb ? -1 : fa > fb ? 1 : la - lb || ca - cb;
});
for (const n of notes) console.log(`note: ${n}`);
for (const e of errors) console.log(e);
const versions = `${schemaPackage} ${schemaManifest.version}, typescript ${ts.version}`;
if (errors.length > 0) {
  console.log(`${dashboardPath}: ${errors.length} error${errors.length === 1 ? '' : 's'} (${versions})`);
  process.exit(1);
}
console.log(`${dashboardPath}: OK, ${panels.length} panels, provisioning ${provisioningDir} (${versions})`);
