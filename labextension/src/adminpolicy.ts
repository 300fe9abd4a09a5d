/**
 * The Admin view's guided policy form (admin.ts opens it): pick the scope, its department or project
 * and the kind; then one row per field the kind has, each with inputs typed for the field (numbers
 * with their unit, lists as comma-separated values, checkboxes for required and fixed), what the wider
 * scopes say of it greyed beside it (what this scope may only tighten), and the server's errors under
 * it. "Edit as JSON" is the advanced path. The model of the form is logic/policyform.ts.
 */

import { RunaiApiError } from './api';
import { h } from './dom';
import {
  applies,
  Attr,
  ATTR_TEXT,
  ATTRS,
  FIELD_TEXT,
  fieldsForKind,
  formToPolicy,
  IInherited,
  inheritedText,
  IPolicyDoc,
  IPolicyField,
  key,
  KINDS,
  placePolicyErrors,
  PolicyFormValues,
  SCOPES
} from './logic/policyform';

/** An open guided form: its texts, what the wider scopes say, and the errors found. */
export interface IPolicyEditing {
  /** the policy edited (`cluster/training`, `project vision/training`), null: a new one */
  key: string | null;
  values: PolicyFormValues;
  inherited: IInherited | null;
  /** why the inherited policy could not be read */
  inheritedError: string | null;
  byRow: Record<string, string[]>;
  general: string[];
  busy: boolean;
}

export interface IPolicyFormOptions {
  editing: IPolicyEditing;
  fields: IPolicyField[];
  departments: string[];
  projects: string[];
  /** the node pools there are (a hint in the node pools row) */
  nodePools: string[];
  /** the scope, name or kind changed: read what the wider scopes say again, then draw */
  targetChanged: () => void;
  rerender: () => void;
  send: (body: IPolicyDoc) => Promise<unknown>;
  saved: () => Promise<void>;
  cancel: () => void;
  /** the policy the form says, as JSON, in the JSON form */
  asJson: (body: IPolicyDoc) => void;
}

const INPUT_PREFIX = 'jp-runai-policy-';

function inputId(field: string, attr: Attr): string {
  return `${INPUT_PREFIX}${field.replace(/\./g, '-')}-${attr}`;
}

/** The input of one cell, typed for the field. */
function cell(field: IPolicyField, attr: Attr, value: string, invalid: boolean, known: string[]): HTMLElement {
  const text = FIELD_TEXT[field.field];
  const id = inputId(field.field, attr);
  const title = `${text?.label ?? field.field}: ${ATTR_TEXT[attr].help}` + (known.length ? ` Known: ${known.join(', ')}.` : '');
  const common = { id, title, dataset: { key: key(field.field, attr), focusKey: id }, 'aria-invalid': invalid ? 'true' : null, 'aria-label': `${text?.label ?? field.field} ${ATTR_TEXT[attr].label.toLowerCase()}` };
  if (!applies(field, attr)) {
    return h('td', { class: 'jp-RunaiPolicyForm-na' }, '');
  }
  let input: HTMLElement;
  if (attr === 'required' || attr === 'can_edit') {
    input = h('input', { ...common, type: 'checkbox', checked: value === 'true' });
  } else if (attr === 'default' && (field.sort === 'bool' || field.choices)) {
    const options = field.sort === 'bool' ? ['true', 'false'] : (field.choices as string[]);
    input = h('select', { ...common, class: 'jp-mod-styled' }, h('option', { value: '', selected: value === '' }, '(unset)'), options.map(o => h('option', { value: o, selected: o === value }, o)));
  } else {
    const numeric = (field.sort === 'number' || field.sort === 'int') && attr !== 'allowed';
    // an example only where it helps: a list's default, a quantity's default (its unit is under the label)
    const placeholder = known.length && (attr === 'default' || attr === 'allowed') ? known.join(', ') : attr !== 'default' ? '' : field.sort === 'names' ? 'a, b' : text?.unit?.startsWith('e.g.') ? text.unit.slice(5) : '';
    input = h('input', {
      ...common,
      class: 'jp-mod-styled',
      type: numeric ? 'number' : 'text',
      step: numeric ? 'any' : null,
      inputmode: numeric ? 'decimal' : null,
      placeholder,
      value,
      autocomplete: 'off',
      spellcheck: 'false'
    });
  }
  return h('td', { class: `jp-RunaiPolicyForm-${attr}` }, input);
}

/** Read every input of the form back into texts (checkboxes: 'true' or ''). */
function read(form: HTMLElement, values: PolicyFormValues): PolicyFormValues {
  const out: PolicyFormValues = { ...values };
  form.querySelectorAll<HTMLInputElement | HTMLSelectElement>('[data-key]').forEach(input => {
    const k = input.dataset.key as string;
    out[k] = input instanceof HTMLInputElement && input.type === 'checkbox' ? (input.checked ? 'true' : '') : input.value;
  });
  return out;
}

export function policyForm(o: IPolicyFormOptions): HTMLElement {
  const { editing, fields } = o;
  const values = editing.values;
  const scope = values.scope || 'project';
  const kind = values.kind || 'training';
  const errorsOf = (row: string) => editing.byRow[row] ?? [];
  const headError = (row: string) => (errorsOf(row).length ? h('div', { class: 'jp-RunaiAdmin-error', role: 'alert' }, errorsOf(row).join('; ')) : null);

  let form: HTMLFormElement;
  const change = (name: string) => (event: Event) => {
    editing.values = read(form, { ...editing.values, [name]: (event.target as HTMLSelectElement).value });
    if (name === 'scope') {
      const names = editing.values.scope === 'department' ? o.departments : o.projects;
      editing.values.name = editing.values.scope === 'cluster' ? '' : names.includes(editing.values.name) ? editing.values.name : (names[0] ?? '');
    }
    o.targetChanged();
  };
  const names = scope === 'department' ? o.departments : o.projects;
  const fixedTarget = editing.key !== null; // an existing policy keeps its scope and kind
  const head = h(
    'div',
    { class: 'jp-RunaiPolicyForm-target' },
    h(
      'label',
      { title: 'Where it applies: the cluster, one department (and its projects) or one project. A narrower scope may only tighten a wider one.' },
      'Scope',
      h('select', { id: `${INPUT_PREFIX}scope`, class: 'jp-mod-styled', disabled: fixedTarget, onchange: change('scope') }, SCOPES.map(s => h('option', { value: s, selected: s === scope }, s)))
    ),
    scope === 'cluster'
      ? null
      : h(
          'label',
          { title: `The ${scope} it applies to` },
          scope === 'department' ? 'Department' : 'Project',
          h('select', { id: `${INPUT_PREFIX}name`, class: 'jp-mod-styled', disabled: fixedTarget, onchange: change('name') }, names.map(n => h('option', { value: n, selected: n === values.name }, n)))
        ),
    h(
      'label',
      { title: 'The workload kind it governs: workspace, training, distributed or inference' },
      'Kind',
      h('select', { id: `${INPUT_PREFIX}kind`, class: 'jp-mod-styled', disabled: fixedTarget, onchange: change('kind') }, KINDS.map(k => h('option', { value: k, selected: k === kind }, k)))
    ),
    headError('scope'),
    headError('name'),
    headError('kind')
  );
  const wider = editing.inherited?.policies.length ? `from ${editing.inherited.policies.join(', ')}` : scope === 'cluster' ? 'nothing: the cluster is the widest scope' : 'no wider policy';
  const known: Record<string, string[]> = { node_pools: o.nodePools };
  const rows = fieldsForKind(fields, kind).flatMap(field => {
    const text = FIELD_TEXT[field.field];
    const errors = errorsOf(field.field);
    const inherited = inheritedText(field.field, editing.inherited);
    const row = h(
      'tr',
      { class: 'jp-RunaiPolicyForm-row', dataset: { field: field.field }, 'aria-invalid': errors.length ? 'true' : null },
      h('th', { scope: 'row', title: `${field.field}: ${text?.help ?? ''}` }, h('span', { class: 'jp-RunaiPolicyForm-label' }, text?.label ?? field.field), text?.unit ? h('span', { class: 'jp-RunaiPolicyForm-unit' }, text.unit) : null),
      ATTRS.map(attr => cell(field, attr, values[key(field.field, attr)] ?? '', errors.some(e => e.includes(`.${attr}:`) || e.startsWith(`${ATTR_TEXT[attr].label.toLowerCase()}:`) || (attr === 'default' && e.startsWith('defaults.'))), known[field.field] ?? [])),
      h('td', { class: 'jp-RunaiPolicyForm-inherited', title: inherited ? `What the wider scopes set: this ${scope} may only tighten it` : 'No wider scope sets it' }, inherited || '—')
    );
    return errors.length ? [row, h('tr', { class: 'jp-RunaiPolicyForm-errorRow', dataset: { field: field.field } }, h('td', { colspan: String(ATTRS.length + 2), class: 'jp-RunaiAdmin-error', role: 'alert' }, errors.join('; ')))] : [row];
  });

  const submit = async (event: Event) => {
    event.preventDefault();
    if (editing.busy) {
      return;
    }
    editing.values = read(form, editing.values);
    const { body, errors } = formToPolicy(editing.values, fields);
    if (Object.keys(errors).length) {
      editing.byRow = {};
      for (const [k, message] of Object.entries(errors)) {
        const [row, attr] = k.split('|');
        (editing.byRow[row] = editing.byRow[row] ?? []).push(attr ? `${ATTR_TEXT[attr as Attr].label.toLowerCase()}: ${message}` : message);
      }
      editing.general = [];
      o.rerender();
      return;
    }
    editing.busy = true;
    try {
      await o.send(body);
      await o.saved();
    } catch (error) {
      editing.busy = false;
      const placed = placePolicyErrors(error instanceof RunaiApiError ? error.body : null, fields);
      editing.byRow = placed.byRow;
      editing.general = placed.general.length || Object.keys(placed.byRow).length ? placed.general : [error instanceof Error ? error.message : String(error)];
      o.rerender();
    }
  };
  form = h(
    'form',
    { class: 'jp-RunaiAdmin-form jp-RunaiPolicyForm', 'aria-label': 'Policy', onsubmit: submit, novalidate: true },
    h('h3', null, editing.key ? `Policy of ${editing.key}` : 'New policy'),
    head,
    h('div', { class: 'jp-RunaiPolicyForm-wider' }, editing.inheritedError ? h('span', { class: 'jp-RunaiAdmin-error' }, `What the wider scopes set could not be read: ${editing.inheritedError}`) : `Greyed: what the wider scopes set (${wider}); this ${scope} may only tighten it. Empty inputs leave a field to them.`),
    h(
      'div',
      { class: 'jp-RunaiPolicyForm-scroll' },
      h(
        'table',
        { class: 'jp-RunaiTable jp-RunaiPolicyForm-table', 'aria-label': 'Fields' },
        h('thead', null, h('tr', null, h('th', null, 'Field'), ATTRS.map(a => h('th', { title: ATTR_TEXT[a].help }, ATTR_TEXT[a].label)), h('th', { title: 'What the wider scopes set' }, 'Inherited'))),
        h('tbody', null, rows)
      )
    ),
    editing.general.length ? h('div', { class: 'jp-RunaiAdmin-error jp-RunaiAdmin-general', role: 'alert' }, editing.general.join('; ')) : null,
    h(
      'div',
      { class: 'jp-RunaiAdmin-formActions' },
      h('button', { type: 'submit', class: 'jp-mod-styled jp-mod-accept jp-RunaiAdmin-save' }, editing.key === null ? 'Create' : 'Save'),
      h('button', { type: 'button', class: 'jp-mod-styled jp-RunaiAdmin-cancel', onclick: () => o.cancel() }, 'Cancel'),
      h(
        'button',
        {
          type: 'button',
          class: 'jp-mod-styled jp-RunaiPolicyForm-json',
          title: 'The advanced path: the policy as JSON (what this form says so far)',
          onclick: () => o.asJson(formToPolicy(read(form, editing.values), fields).body)
        },
        'Edit as JSON'
      )
    )
  );
  return form;
}
