/**
 * The Admin view's logic (no DOM): forms for departments, projects, node pools and role
 * bindings turned into REST bodies (a change sends only what changed), the server's errors put
 * beside the fields that caused them, and the audit log's before/after told as a short list of
 * changes. Validation itself is the server's (one place): the form sends what was typed, and
 * the server's answer names each field and what it allows.
 */

import { IErrorBody, IFieldError } from './types';

export interface IAmounts {
  gpu: number | string | null;
  cpu: number | string | null;
  memory: number | string | null;
}

/** A department or project as `GET /departments` and `GET /projects` give it. */
export interface IQueue {
  name: string;
  department?: string;
  priority: number;
  deserved: IAmounts;
  limit: IAmounts;
  over_quota_weight: number;
  node_pools: Record<string, unknown>;
  rules?: Record<string, unknown>;
  projects?: string[];
}

export interface INodePool {
  name: string;
  label_selector: Record<string, string>;
  gpu_placement: string;
  cpu_placement: string;
  device_placement: string;
  nodes?: string[];
}

export interface IBinding {
  id: number | null;
  source: 'config' | 'store';
  role: string;
  user?: string;
  group?: string;
  department?: string;
  project?: string;
}

export interface IAuditEntry {
  id: number;
  at: string;
  user: string;
  action: string;
  kind: string;
  name: string;
  before: unknown;
  after: unknown;
}

export interface IFieldSpec {
  /** the server's field path, also the form's field id */
  id: string;
  label: string;
  /** what the field means (its tooltip), in the words of docs/admin.md and the models */
  help: string;
  placeholder?: string;
  /** a select's choices */
  choices?: string[];
  /** a text area of this many rows (JSON, one item a line) */
  rows?: number;
  /** across the whole form */
  wide?: boolean;
}

/** a form's values by field id, as typed */
export type FormValues = Record<string, string>;

export const QUEUE_FIELDS: IFieldSpec[] = [
  { id: 'name', label: 'Name', help: 'A DNS-1123 label: lowercase letters, digits and -. Cannot be changed later.', placeholder: 'vision' },
  { id: 'department', label: 'Department', help: 'The department the project belongs to: its quota and limit bound the project\u2019s.' },
  { id: 'deserved.gpu', label: 'Deserved GPUs', help: 'The quota: GPUs guaranteed to the queue (fractions allowed, e.g. 2.5). Work inside it is never reclaimed.', placeholder: '0' },
  { id: 'deserved.cpu', label: 'Deserved CPU', help: 'Guaranteed CPU, in cores or millicores (500m).', placeholder: '0' },
  { id: 'deserved.memory', label: 'Deserved memory', help: 'Guaranteed memory, as a quantity (256Gi).', placeholder: '0' },
  { id: 'limit.gpu', label: 'GPU limit', help: 'The most GPUs the queue may hold, at least deserved. Empty: unlimited.', placeholder: 'unlimited' },
  { id: 'limit.cpu', label: 'CPU limit', help: 'The most CPU the queue may hold. Empty: unlimited.', placeholder: 'unlimited' },
  { id: 'limit.memory', label: 'Memory limit', help: 'The most memory the queue may hold. Empty: unlimited.', placeholder: 'unlimited' },
  { id: 'over_quota_weight', label: 'Over-quota weight', help: 'Its share of idle GPUs beyond deserved quotas, relative to its siblings. 0: no share above deserved (idle GPUs may still be used, and are the first reclaimed).', placeholder: '1' },
  { id: 'priority', label: 'Priority', help: 'Queue priority among siblings (0 to the maximum): higher gets idle capacity first. Default 100.', placeholder: '100' },
  {
    id: 'node_pools',
    label: 'Per-pool quotas (JSON)',
    rows: 3,
    wide: true,
    help: 'A quota per node pool: {"a100": {"deserved": {"gpu": 2}, "limit": {"gpu": 4}, "over_quota_weight": 1}}. A pool removed here loses its own quota.',
    placeholder: '{}'
  },
  {
    id: 'rules',
    label: 'Scheduling rules (JSON)',
    rows: 3,
    wide: true,
    help: 'Rules per workload kind: {"training": {"max_duration": "8h"}, "workspace": {"idle_gpu_timeout": "30m"}}; also preemptible_max_duration and node_pools. A project\u2019s rule and its department\u2019s both apply (the shorter duration wins). A kind removed here loses its rules (docs/rules.md).',
    placeholder: '{}'
  }
];

/**
 * The queue fields edited as JSON objects, and how deep the server merges a change: a pool's
 * quota is replaced whole (1); rules merge by kind, then rule by rule (2). A key removed at a
 * merged level is sent as null, which removes it.
 */
const JSON_FIELDS: Record<string, number> = { node_pools: 1, rules: 2 };

/** `next` with null for every key of `old` it no longer has, down to `depth` levels. */
function withRemovals(old: Record<string, unknown>, next: Record<string, unknown>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { ...next };
  for (const [key, was] of Object.entries(old)) {
    const now = next[key];
    if (!(key in next)) {
      out[key] = null;
    } else if (depth > 1 && isObject(was) && isObject(now)) {
      out[key] = withRemovals(was, now, depth - 1);
    }
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

export const GPU_PLACEMENTS = ['fragmentation-aware', 'binpack', 'spread'];
export const CPU_PLACEMENTS = ['binpack', 'spread'];
export const DEVICE_PLACEMENTS = ['pack', 'spread'];

export const POOL_FIELDS: IFieldSpec[] = [
  { id: 'name', label: 'Name', help: 'A DNS-1123 label. Cannot be changed later.', placeholder: 'a100' },
  { id: 'label_selector', label: 'Label selector', rows: 3, help: 'Labels a node must carry (all of them) to join the pool, one key=value a line. Empty: every node not taken by an earlier pool.', placeholder: 'nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB' },
  { id: 'gpu_placement', label: 'GPU placement', help: 'Node choice for GPU pods: fragmentation-aware (default), binpack or spread.', choices: GPU_PLACEMENTS },
  { id: 'cpu_placement', label: 'CPU placement', help: 'Node choice for CPU-only pods: binpack (default) or spread.', choices: CPU_PLACEMENTS },
  { id: 'device_placement', label: 'Device placement', help: 'Device choice for fractions on a node: pack (default) or spread.', choices: DEVICE_PLACEMENTS }
];

export const ROLES = ['admin', 'department-admin', 'ml-engineer', 'researcher', 'viewer'];

export const BINDING_FIELDS: IFieldSpec[] = [
  { id: 'role', label: 'Role', help: 'admin (the whole cluster), department-admin (a department and its projects), ml-engineer (inference in a project), researcher (submit and manage own workloads in a project), viewer (read only).', choices: ROLES },
  { id: 'subject', label: 'User or group', help: 'Who holds the role: a user name, or a group (JupyterHub\u2019s groups).', choices: ['user', 'group'] },
  { id: 'name', label: 'Name', help: 'The user\u2019s or the group\u2019s name.', placeholder: 'alice' },
  { id: 'scope', label: 'On', help: 'Where the role applies: the whole cluster, one department (and its projects) or one project.', choices: ['cluster', 'department', 'project'] },
  { id: 'scope_name', label: 'Department or project', help: 'The department or project the role applies to (none for the whole cluster).', placeholder: 'vision' }
];

function text(v: unknown): string {
  return v === null || v === undefined ? '' : String(v);
}

/** A queue's form values (empty for a new one; a new project's department is the first one). */
export function queueForm(q: IQueue | null, department = ''): FormValues {
  return {
    name: q?.name ?? '',
    department: q?.department ?? department,
    'deserved.gpu': text(q?.deserved.gpu ?? ''),
    'deserved.cpu': q && String(q.deserved.cpu) !== '0' ? text(q.deserved.cpu) : '',
    'deserved.memory': q && String(q.deserved.memory) !== '0' ? text(q.deserved.memory) : '',
    'limit.gpu': text(q?.limit.gpu),
    'limit.cpu': text(q?.limit.cpu),
    'limit.memory': text(q?.limit.memory),
    over_quota_weight: text(q?.over_quota_weight ?? ''),
    priority: text(q?.priority ?? ''),
    node_pools: q && Object.keys(q.node_pools).length ? JSON.stringify(q.node_pools) : '',
    rules: q?.rules && Object.keys(q.rules).length ? JSON.stringify(compactPolicy(q.rules)) : ''
  };
}

/** "2" -> 2, "2.5" -> 2.5; anything else as typed (the server names what it allows). */
function numberOr(value: string): number | string {
  const t = value.trim();
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

export interface IBuilt {
  body: Record<string, unknown>;
  /** problems found before sending (a JSON field that does not parse); field id -> message */
  errors: Record<string, string>;
}

/**
 * The body of `POST` (no `before`) or `PATCH` (`before`: the form's values when it opened, so only
 * what changed is sent) for a department (`project: false`) or project.
 */
export function queueBody(values: FormValues, before: FormValues | null, project: boolean): IBuilt {
  const errors: Record<string, string> = {};
  const body: Record<string, unknown> = {};
  const changed = (id: string) => before === null || (values[id] ?? '').trim() !== (before[id] ?? '').trim();
  if (before === null) {
    body.name = values.name.trim();
  }
  if (project && changed('department') && values.department) {
    body.department = values.department;
  }
  for (const group of ['deserved', 'limit'] as const) {
    const part: Record<string, unknown> = {};
    for (const res of ['gpu', 'cpu', 'memory']) {
      const id = `${group}.${res}`;
      const v = (values[id] ?? '').trim();
      if (!changed(id) || (before === null && v === '')) {
        continue;
      }
      // a limit emptied: unlimited; a deserved amount emptied: 0
      part[res] = v === '' ? (group === 'limit' ? null : 0) : res === 'gpu' ? numberOr(v) : v;
    }
    if (Object.keys(part).length) {
      body[group] = part;
    }
  }
  for (const id of ['over_quota_weight', 'priority']) {
    const v = (values[id] ?? '').trim();
    if (changed(id) && v !== '') {
      body[id] = numberOr(v);
    }
  }
  for (const [id, depth] of Object.entries(JSON_FIELDS)) {
    if (!changed(id)) {
      continue;
    }
    const parsed = parseJsonObject(values[id] ?? '');
    if (typeof parsed === 'string') {
      errors[id] = parsed;
      continue;
    }
    const old = before ? parseJsonObject(before[id] ?? '') : {};
    const merged = typeof old === 'string' ? parsed : withRemovals(old, parsed, depth);
    if (Object.keys(merged).length) {
      body[id] = merged;
    }
  }
  return { body, errors };
}

/** '' -> {}; a JSON object -> it; anything else -> the message saying what is expected. */
export function parseJsonObject(textValue: string): Record<string, unknown> | string {
  const t = textValue.trim();
  if (!t) {
    return {};
  }
  try {
    const v = JSON.parse(t);
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return v as Record<string, unknown>;
    }
  } catch (error) {
    return `not JSON: ${(error as Error).message}`;
  }
  return 'a JSON object ({...})';
}

export function poolForm(p: INodePool | null): FormValues {
  return {
    name: p?.name ?? '',
    label_selector: p
      ? Object.entries(p.label_selector)
          .map(([k, v]) => `${k}=${v}`)
          .join('\n')
      : '',
    gpu_placement: p?.gpu_placement ?? GPU_PLACEMENTS[0],
    cpu_placement: p?.cpu_placement ?? CPU_PLACEMENTS[0],
    device_placement: p?.device_placement ?? DEVICE_PLACEMENTS[0]
  };
}

/** "a=b\nc=d" (or commas) -> {a: 'b', c: 'd'}; a part without '=' -> the message. */
export function parseSelector(textValue: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const part of textValue.split(/[\n,]/)) {
    const t = part.trim();
    if (!t) {
      continue;
    }
    const at = t.indexOf('=');
    if (at <= 0) {
      return `key=value, one a line; got ${JSON.stringify(t)}`;
    }
    out[t.slice(0, at).trim()] = t.slice(at + 1).trim();
  }
  return out;
}

export function poolBody(values: FormValues, before: FormValues | null): IBuilt {
  const errors: Record<string, string> = {};
  const body: Record<string, unknown> = {};
  const changed = (id: string) => before === null || (values[id] ?? '').trim() !== (before[id] ?? '').trim();
  if (before === null) {
    body.name = values.name.trim();
  }
  if (changed('label_selector')) {
    const selector = parseSelector(values.label_selector ?? '');
    if (typeof selector === 'string') {
      errors.label_selector = selector;
    } else {
      body.label_selector = selector;
    }
  }
  for (const id of ['gpu_placement', 'cpu_placement', 'device_placement']) {
    if (changed(id)) {
      body[id] = values[id];
    }
  }
  return { body, errors };
}

/** The grant form -> `POST access/bindings`'s body. */
export function bindingBody(values: FormValues): Record<string, unknown> {
  const body: Record<string, unknown> = { role: values.role };
  body[values.subject === 'group' ? 'group' : 'user'] = (values.name ?? '').trim();
  if (values.scope === 'department' || values.scope === 'project') {
    body[values.scope] = (values.scope_name ?? '').trim();
  }
  return body;
}

/** "researcher · group cat-people · on project cats" */
export function bindingLabel(b: IBinding): string {
  const who = b.user !== undefined ? `user ${b.user}` : `group ${b.group}`;
  const on = b.project ? `project ${b.project}` : b.department ? `department ${b.department}` : 'the cluster';
  return `${b.role} · ${who} · on ${on}`;
}

/** The server's field for a binding error -> the grant form's field. */
function bindingField(field: string): string {
  if (field === 'user' || field === 'group') {
    return 'name';
  }
  if (field === 'department' || field === 'project') {
    return 'scope_name';
  }
  return field;
}

export interface IPlaced {
  /** field id -> its messages */
  byField: Record<string, string[]>;
  /** errors that belong to no field of the form */
  general: string[];
}

/** "deserved.gpu: must be …" -> "must be …": the message shows beside the field already. */
export function withoutFieldPrefix(e: IFieldError): string {
  const prefix = e.field ? `${e.field}: ` : '';
  return prefix && e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
}

/**
 * Put every error of the server's answer beside its field: the field whose id is the error's
 * field or the longest one it lies under (`node_pools.a100.deserved.gpu` -> `node_pools`, with
 * the rest of the path kept in the message); the rest in `general`. Every error, at once.
 */
export function placeAdminErrors(body: IErrorBody | null | undefined, fields: string[], fallback = 'The server refused the change', binding = false): IPlaced {
  const out: IPlaced = { byField: {}, general: [] };
  const error = body?.error;
  if (!error) {
    out.general.push(fallback);
    return out;
  }
  const list: IFieldError[] = error.errors && error.errors.length ? error.errors : [error];
  for (const e of list) {
    const raw = e.field ?? '';
    const field = binding ? bindingField(raw) : raw;
    const home = fields.filter(f => field === f || field.startsWith(`${f}.`)).sort((a, b) => b.length - a.length)[0];
    const message = withoutFieldPrefix(e);
    if (home === undefined) {
      out.general.push(e.message);
    } else {
      const where = field === home ? '' : `${field.slice(home.length + 1)}: `;
      (out.byField[home] = out.byField[home] ?? []).push(where + message);
    }
  }
  return out;
}

/** Leaf values of a JSON object by dotted path. */
function leaves(value: unknown, prefix = '', out: Map<string, unknown> = new Map()): Map<string, unknown> {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (!entries.length && prefix) {
      out.set(prefix, '{}');
    }
    for (const [k, v] of entries) {
      leaves(v, prefix ? `${prefix}.${k}` : k, out);
    }
  } else if (prefix) {
    out.set(prefix, value);
  }
  return out;
}

function show(v: unknown): string {
  if (v === null || v === undefined) {
    return 'none';
  }
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * What an audit entry changed, as `runai audit` says it: "deserved.gpu 1 -> 2" per changed
 * value, at most `most` of them (then "and N more"); a create or delete lists nothing.
 */
export function auditChanges(entry: IAuditEntry, most = 6): string[] {
  if (entry.before === null || entry.before === undefined || entry.after === null || entry.after === undefined) {
    return [];
  }
  const a = leaves(entry.before);
  const b = leaves(entry.after);
  const keys = Array.from(new Set([...a.keys(), ...b.keys()])).sort();
  const out: string[] = [];
  for (const k of keys) {
    const x = a.get(k);
    const y = b.get(k);
    if (JSON.stringify(x) !== JSON.stringify(y)) {
      out.push(`${k} ${show(x)} -> ${show(y)}`);
    }
  }
  if (out.length > most) {
    const rest = out.length - most;
    return [...out.slice(0, most), `and ${rest} more`];
  }
  return out;
}

/** A queue's quota in one line for the lists: "2 GPUs deserved · limit 4 · weight 1 · priority 100". */
export function queueSummary(q: IQueue): string {
  const gpu = Number(q.deserved.gpu ?? 0);
  const parts = [`${gpu} GPU${gpu === 1 ? '' : 's'} deserved`];
  if (String(q.deserved.cpu ?? '0') !== '0') {
    parts.push(`${q.deserved.cpu} CPU`);
  }
  if (String(q.deserved.memory ?? '0') !== '0') {
    parts.push(`${q.deserved.memory} memory`);
  }
  // "GPU limit 6" beside "no GPU limit": which resource the limit bounds, either way
  parts.push(q.limit.gpu === null || q.limit.gpu === undefined ? 'no GPU limit' : `GPU limit ${q.limit.gpu}`);
  parts.push(`weight ${q.over_quota_weight}`, `priority ${q.priority}`);
  const pools = Object.keys(q.node_pools ?? {});
  if (pools.length) {
    parts.push(`pools: ${pools.join(', ')}`);
  }
  return parts.join(' · ');
}

/** A policy (or rules) without its unset (null) values, for reading and editing: `{"max": 1}`, not six keys. */
export function compactPolicy<T>(value: T): T {
  if (Array.isArray(value)) {
    return value.map(compactPolicy) as unknown as T;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v !== null && v !== undefined) {
        out[k] = compactPolicy(v);
      }
    }
    return out as T;
  }
  return value;
}
