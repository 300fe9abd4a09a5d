/**
 * The Admin view's guided policy form, its pure part: a policy (scope, name, kind, defaults, rules)
 * as one text per input and back, the rows a kind has, what the wider scopes say of each field (the
 * inherited policy, shown greyed beside the row), and the server's errors placed on their rows.
 * The fields and their sorts come from the server (`GET policies` → `fields`); the words shown
 * for each are here. No JupyterLab imports.
 */

import { IErrorBody } from './types';

/** the sort of value a field takes (models/policy.py POLICY_FIELDS) */
export type FieldSort = 'number' | 'int' | 'cpu' | 'memory' | 'text' | 'choice' | 'bool' | 'names';

/** one field a policy may govern, as `GET policies` lists it */
export interface IPolicyField {
  field: string;
  sort: FieldSort;
  kinds: string[] | null;
  choices: string[] | null;
  rules: string[];
}

export interface IRule {
  required?: boolean | null;
  min?: number | string | null;
  max?: number | string | null;
  step?: number | string | null;
  allowed?: unknown[] | null;
  can_edit?: boolean | null;
}

export interface IPolicyDoc {
  scope: string;
  name?: string | null;
  kind: string;
  defaults: Record<string, unknown>;
  rules: Record<string, IRule>;
}

/** what the wider scopes say (`GET policies/inherited`) */
export interface IInherited {
  policies: string[];
  defaults: Record<string, unknown>;
  default_from?: Record<string, string>;
  rules: Record<string, IRule & { from?: string[] }>;
}

export const SCOPES = ['cluster', 'department', 'project'];
export const KINDS = ['workspace', 'training', 'distributed', 'inference'];
/** the inputs of a row, in order */
export const ATTRS = ['default', 'required', 'min', 'max', 'step', 'allowed', 'can_edit'] as const;
export type Attr = (typeof ATTRS)[number];

/** the inputs' texts: `scope`, `name`, `kind`, and `<field>|<attr>` for each row */
export type PolicyFormValues = Record<string, string>;

export function key(field: string, attr: Attr): string {
  return `${field}|${attr}`;
}

/** Each field's label, unit and meaning (the words of docs/admin.md), for the rows and their tooltips. */
export const FIELD_TEXT: Record<string, { label: string; unit?: string; help: string }> = {
  image: { label: 'Image', help: 'The container image (Kubernetes; recorded on the local cluster). Allowed values: the images users may pick.' },
  'resources.gpu': { label: 'GPUs', unit: 'devices; 0.5 = half', help: 'GPUs per pod: whole devices (1, 2) or a fraction of one (0.5). A step of 0.25 allows quarters only.' },
  'resources.gpu_memory': { label: 'GPU memory', unit: 'e.g. 20Gi', help: 'GPU memory per device, asked instead of a fraction (a quantity: 20Gi).' },
  'resources.cpu': { label: 'CPU request', unit: 'cores or m', help: 'CPU per pod: cores (2) or millicores (500m).' },
  'resources.cpu_limit': { label: 'CPU limit', unit: 'cores or m', help: 'The most CPU a pod may use: cores (4) or millicores.' },
  'resources.memory': { label: 'Memory request', unit: 'e.g. 16Gi', help: 'Memory per pod (a quantity: 16Gi, 512Mi).' },
  'resources.memory_limit': { label: 'Memory limit', unit: 'e.g. 32Gi', help: 'The most memory a pod may use (a quantity).' },
  priority_class: { label: 'Priority class', help: 'train (preemptible), build-preemptible, build (workspaces), inference.' },
  preemptible: { label: 'Preemptible', help: 'Whether the scheduler may stop the workload to make room (by priority when unset).' },
  node_pools: { label: 'Node pools', unit: 'names', help: 'The pools a workload may run in, most preferred first. Allowed values: the pools users may pick; with no default, a submission gets them all.' },
  data_sources: { label: 'Data sources', unit: 'names', help: 'Data sources of the project attached by name.' },
  working_dir: { label: 'Working directory', help: 'The directory the command starts in.' },
  workers: { label: 'Workers', unit: 'pods', help: 'Distributed training: worker pods beside the master.' },
  min_replicas: { label: 'Min replicas', unit: 'pods', help: 'Inference: replicas kept running.' },
  max_replicas: { label: 'Max replicas', unit: 'pods', help: 'Inference: the most replicas under load.' },
  backoff_limit: { label: 'Backoff limit', unit: 'restarts', help: 'Training: times a failed run is started again.' }
};

export const ATTR_TEXT: Record<Attr, { label: string; help: string }> = {
  default: { label: 'Default', help: 'What a submission gets when it leaves the field out; a narrower scope\'s default replaces a wider one\'s.' },
  required: { label: 'Required', help: 'The submission must have a value (given or from a default).' },
  min: { label: 'Min', help: 'The smallest value (numbers and quantities). A narrower scope may only raise it.' },
  max: { label: 'Max', help: 'The largest value (numbers and quantities). A narrower scope may only lower it.' },
  step: { label: 'Step', help: 'The value must be a multiple of this (0.25 GPUs: quarters only).' },
  allowed: { label: 'Allowed values', help: 'Comma-separated; a narrower scope may only allow fewer. For a list of names, every name must be one of them.' },
  can_edit: { label: 'Fixed', help: 'Users may not change the default: a submission may only give its value.' }
};

/** The fields a policy of `kind` may govern, in the server's order. */
export function fieldsForKind(fields: IPolicyField[], kind: string): IPolicyField[] {
  return fields.filter(f => f.kinds === null || f.kinds.includes(kind));
}

/** Whether a row's input applies to the field (min/max/step to numbers and quantities, ...). */
export function applies(field: IPolicyField, attr: Attr): boolean {
  return attr === 'default' || field.rules.includes(attr);
}

function valueText(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (Array.isArray(value)) {
    return value.map(v => String(v)).join(', ');
  }
  return String(value);
}

/** The form's texts for a policy (a new one: empty rows). */
export function policyToForm(p: IPolicyDoc): PolicyFormValues {
  const out: PolicyFormValues = { scope: p.scope, name: p.name ?? '', kind: p.kind };
  for (const [field, value] of Object.entries(p.defaults ?? {})) {
    out[key(field, 'default')] = valueText(value);
  }
  for (const [field, rule] of Object.entries(p.rules ?? {})) {
    if (rule.required) {
      out[key(field, 'required')] = 'true';
    }
    for (const attr of ['min', 'max', 'step'] as const) {
      if (rule[attr] !== null && rule[attr] !== undefined) {
        out[key(field, attr)] = String(rule[attr]);
      }
    }
    if (rule.allowed) {
      out[key(field, 'allowed')] = valueText(rule.allowed);
    }
    if (rule.can_edit === false) {
      out[key(field, 'can_edit')] = 'true';
    }
  }
  return out;
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** One typed value from its text, or the problem with it. */
function parseValue(field: IPolicyField, text: string): { value?: unknown; error?: string } {
  switch (field.sort) {
    case 'number':
    case 'int': {
      if (!NUMBER.test(text)) {
        return { error: `${text} is not a number` };
      }
      const n = Number(text);
      if (field.sort === 'int' && !Number.isInteger(n)) {
        return { error: `${text} is not a whole number` };
      }
      return { value: n };
    }
    case 'cpu':
    case 'memory':
      // a plain number stays a number (cores, bytes); a quantity ("500m", "16Gi") is sent as written
      return { value: NUMBER.test(text) ? Number(text) : text };
    case 'bool':
      if (text !== 'true' && text !== 'false') {
        return { error: 'true or false' };
      }
      return { value: text === 'true' };
    case 'choice':
      if (field.choices && !field.choices.includes(text)) {
        return { error: `${text} is not one of ${field.choices.join(', ')}` };
      }
      return { value: text };
    default:
      return { value: text };
  }
}

function items(text: string): string[] {
  return text
    .split(',')
    .map(s => s.trim())
    .filter(s => s !== '');
}

/**
 * The policy the form's texts say, with the problems found before sending (keyed as the inputs).
 * Only the fields of the chosen kind are read; an empty input says nothing (the wider scope's rule
 * still applies).
 */
export function formToPolicy(values: PolicyFormValues, fields: IPolicyField[]): { body: IPolicyDoc; errors: Record<string, string> } {
  const scope = values.scope || 'cluster';
  const kind = values.kind || 'training';
  const body: IPolicyDoc = { scope, kind, defaults: {}, rules: {} };
  if (scope !== 'cluster') {
    body.name = (values.name ?? '').trim();
  }
  const errors: Record<string, string> = {};
  if (scope !== 'cluster' && !body.name) {
    errors.name = `required: the ${scope}'s name`;
  }
  for (const field of fieldsForKind(fields, kind)) {
    const text = (attr: Attr) => (values[key(field.field, attr)] ?? '').trim();
    const rule: IRule = {};
    const fallback = text('default');
    if (fallback !== '') {
      if (field.sort === 'names') {
        body.defaults[field.field] = items(fallback);
      } else {
        const parsed = parseValue(field, fallback);
        if (parsed.error) {
          errors[key(field.field, 'default')] = parsed.error;
        } else {
          body.defaults[field.field] = parsed.value;
        }
      }
    }
    if (text('required') === 'true' && applies(field, 'required')) {
      rule.required = true;
    }
    for (const attr of ['min', 'max', 'step'] as const) {
      if (text(attr) !== '' && applies(field, attr)) {
        const parsed = parseValue(field, text(attr));
        if (parsed.error) {
          errors[key(field.field, attr)] = parsed.error;
        } else {
          rule[attr] = parsed.value as number | string;
        }
      }
    }
    if (text('allowed') !== '' && applies(field, 'allowed')) {
      const parsed = items(text('allowed')).map(t => (field.sort === 'names' ? { value: t } : parseValue(field, t)));
      const bad = parsed.find(p => p.error);
      if (bad) {
        errors[key(field.field, 'allowed')] = bad.error as string;
      } else {
        rule.allowed = parsed.map(p => p.value);
      }
    }
    if (text('can_edit') === 'true' && applies(field, 'can_edit')) {
      rule.can_edit = false;
    }
    if (Object.keys(rule).length) {
      body.rules[field.field] = rule;
    }
  }
  return { body, errors };
}

/** What the wider scopes say of one field, in words ('' when nothing): shown greyed beside its row. */
export function inheritedText(field: string, inherited: IInherited | null): string {
  if (!inherited) {
    return '';
  }
  const parts: string[] = [];
  const whose = new Set<string>();
  if (field in (inherited.defaults ?? {})) {
    parts.push(`default ${valueText(inherited.defaults[field])}`);
    const from = inherited.default_from?.[field];
    if (from) {
      whose.add(from);
    }
  }
  const rule = inherited.rules?.[field];
  if (rule) {
    if (rule.required) {
      parts.push('required');
    }
    if (rule.min !== null && rule.min !== undefined) {
      parts.push(`min ${rule.min}`);
    }
    if (rule.max !== null && rule.max !== undefined) {
      parts.push(`max ${rule.max}`);
    }
    if (rule.step !== null && rule.step !== undefined) {
      parts.push(`step ${rule.step}`);
    }
    if (rule.allowed) {
      parts.push(`one of ${valueText(rule.allowed)}`);
    }
    if (rule.can_edit === false) {
      parts.push('fixed');
    }
    for (const s of rule.from ?? []) {
      whose.add(s);
    }
  }
  if (!parts.length) {
    return '';
  }
  return parts.join(', ') + (whose.size ? ` (${Array.from(whose).join(', ')})` : '');
}

/** The server's errors by row (a field of the catalog) or header input (scope, name, kind); the rest general. */
export function placePolicyErrors(body: IErrorBody | null | undefined, fields: IPolicyField[]): { byRow: Record<string, string[]>; general: string[] } {
  const out: { byRow: Record<string, string[]>; general: string[] } = { byRow: {}, general: [] };
  const error = body?.error;
  if (!error) {
    out.general.push('The server refused the policy');
    return out;
  }
  const names = fields.map(f => f.field).sort((a, b) => b.length - a.length);
  for (const e of error.errors && error.errors.length ? error.errors : [error]) {
    const raw = (e.field ?? '').replace(/^(rules|defaults)\./, '');
    const row = ['scope', 'name', 'kind'].includes(raw) ? raw : names.find(n => raw === n || raw.startsWith(`${n}.`));
    if (row === undefined) {
      out.general.push(e.message);
    } else {
      (out.byRow[row] = out.byRow[row] ?? []).push(e.message);
    }
  }
  return out;
}
