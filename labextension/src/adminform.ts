/**
 * The Admin view's form (admin.ts): one input per field with its meaning as a tooltip, the
 * server's errors beside the fields they name (every one at once), and the request sent on
 * submit; a form that finds a problem itself (a JSON field that does not parse) sends nothing.
 */

import { RunaiApiError } from './api';
import { h } from './dom';
import { FormValues, IFieldSpec, IPlaced, placeAdminErrors } from './logic/admin';

export type AdminTab = 'projects' | 'departments' | 'node-pools' | 'policies' | 'access' | 'audit';

/** An open form: what it edits (null: a new one), its values when opened, and its errors. */
export interface IEditing {
  tab: AdminTab;
  key: string | null;
  before: FormValues | null;
  values: FormValues;
  placed: IPlaced;
  busy: boolean;
}

/** the body built from the form's values (with the problems found before sending), and how to send it */
export type BuildRequest = (values: FormValues) => { built: { body: Record<string, unknown>; errors: Record<string, string> }; send: () => Promise<unknown> };

export interface IAdminFormOptions {
  fields: IFieldSpec[];
  editing: IEditing;
  title: string;
  build: BuildRequest;
  /** a role binding's form: the server's user/group and department/project errors go to its fields */
  binding?: boolean;
  /** draw the view again (the form shows its new errors) */
  rerender: () => void;
  cancel: () => void;
  /** the server accepted it */
  saved: () => Promise<void>;
}

/** A form of `fields` with each field's tooltip and, beside it, the server's errors for it. */
export function adminForm(o: IAdminFormOptions): HTMLElement {
  const { fields, editing, title, build, binding } = o;
  const inputs = new Map<string, HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>();
  const controls = fields.map(f => {
    const id = `jp-runai-admin-${f.id.replace(/\./g, '-')}`;
    const value = editing.values[f.id] ?? '';
    let input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
    if (f.choices) {
      input = h('select', { id, class: 'jp-mod-styled', title: f.help }, f.choices.map(c => h('option', { value: c, selected: c === value }, c)));
    } else if (f.rows) {
      input = h('textarea', { id, class: 'jp-mod-styled', title: f.help, placeholder: f.placeholder, rows: f.rows, spellcheck: 'false' });
      input.value = value;
    } else {
      input = h('input', { id, class: 'jp-mod-styled', title: f.help, placeholder: f.placeholder, value, disabled: f.id === 'name' && editing.key !== null, autocomplete: 'off' });
    }
    inputs.set(f.id, input);
    const errors = editing.placed.byField[f.id] ?? [];
    if (errors.length) {
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', `${id}-error`);
    }
    return h(
      'div',
      { class: `jp-RunaiAdmin-field${f.wide ? ' jp-mod-wide' : ''}`, dataset: { field: f.id } },
      h('label', { for: id, title: f.help }, f.label),
      input,
      errors.length ? h('div', { class: 'jp-RunaiAdmin-error', id: `${id}-error`, role: 'alert' }, errors.join('; ')) : null
    );
  });
  const read = (): FormValues => {
    const out: FormValues = {};
    for (const [id, input] of inputs) {
      out[id] = input.value;
    }
    return out;
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    if (editing.busy) {
      return;
    }
    editing.values = read();
    const { built, send } = build(editing.values);
    if (Object.keys(built.errors).length) {
      editing.placed = { byField: Object.fromEntries(Object.entries(built.errors).map(([k, v]) => [k, [v]])), general: [] };
      o.rerender();
      return;
    }
    if (editing.key !== null && !Object.keys(built.body).length) {
      editing.placed = { byField: {}, general: ['Nothing changed.'] };
      o.rerender();
      return;
    }
    editing.busy = true;
    try {
      await send();
      await o.saved();
    } catch (error) {
      editing.busy = false;
      const body = error instanceof RunaiApiError ? error.body : null;
      editing.placed = placeAdminErrors(body, [...inputs.keys()], error instanceof Error ? error.message : String(error), binding);
      o.rerender();
    }
  };
  return h(
    'form',
    { class: 'jp-RunaiAdmin-form', 'aria-label': title, onsubmit: submit, novalidate: true },
    h('h3', null, title),
    h('div', { class: 'jp-RunaiAdmin-fields' }, controls),
    editing.placed.general.length ? h('div', { class: 'jp-RunaiAdmin-error jp-RunaiAdmin-general', role: 'alert' }, editing.placed.general.join('; ')) : null,
    h(
      'div',
      { class: 'jp-RunaiAdmin-formActions' },
      h('button', { type: 'submit', class: 'jp-mod-styled jp-mod-accept jp-RunaiAdmin-save' }, editing.key === null ? (binding ? 'Grant' : 'Create') : 'Save'),
      h(
        'button',
        {
          type: 'button',
          class: 'jp-mod-styled jp-RunaiAdmin-cancel',
          onclick: () => o.cancel()
        },
        'Cancel'
      )
    )
  );
}
