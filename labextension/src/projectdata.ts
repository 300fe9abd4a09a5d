/** A project's data sources and credentials in the main area (what `runai data-source` and
 * `runai credential` do): list, add, delete with confirmation; server field errors beside
 * their fields. Credential values are typed into password inputs, sent once, and cleared:
 * the server answers with keys only, and nothing here keeps or shows a value. */

import { Dialog, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { RunaiApiError } from './api';
import { h, replaceChildren } from './dom';
import {
  buildCredential,
  buildDataSource,
  credentialSummary,
  dataSourceAccess,
  dataSourceSource,
  defaultTarget,
  emptyCredential,
  emptyDataSource,
  ICredentialState,
  IDataSourceState,
  placeProjectDataErrors
} from './logic/projectdata';
import { ICredentialView, IDataSource } from './logic/types';
import { RunaiModel } from './model';

const DS_FIELDS = ['name', 'kind', 'path', 'access', 'url', 'revision', 'target'];
const CRED_FIELDS = ['name', 'inject_as', 'mount_path'];

/** Error slots of one small form: a message under each field, the first one focused. */
class FieldErrors {
  constructor(private readonly prefix: string) {}

  slot(id: string): HTMLElement {
    const el = h('div', { class: 'jp-RunaiField-error', id: `${this.prefix}-${id}-error`, role: 'alert', 'aria-live': 'polite' });
    this._slots.set(id, el);
    return el;
  }

  field(id: string, label: string, control: HTMLElement, hint: string | HTMLElement | null = null): HTMLElement {
    control.setAttribute('aria-describedby', `${this.prefix}-${id}-error`);
    this._controls.set(id, control);
    const wrapper = h(
      'div',
      { class: 'jp-RunaiField', dataset: { field: id } },
      h('label', { class: 'jp-RunaiField-label', for: control.id || undefined }, label),
      h('div', { class: 'jp-RunaiField-control' }, control, hint ? h('div', { class: 'jp-RunaiField-hint' }, hint) : null, this.slot(id))
    );
    this._fields.set(id, wrapper);
    return wrapper;
  }

  /** A control and its wrapper registered by hand (rows of the credential form). */
  register(id: string, wrapper: HTMLElement, control: HTMLElement): void {
    this._fields.set(id, wrapper);
    this._controls.set(id, control);
  }

  clear(id: string): void {
    const el = this._slots.get(id);
    if (el?.textContent) {
      el.textContent = '';
      this._fields.get(id)?.classList.remove('jp-mod-error');
      this._controls.get(id)?.removeAttribute('aria-invalid');
    }
  }

  show(byField: Record<string, string[] | string>, general: string[], generalEl: HTMLElement): void {
    let first: string | null = null;
    for (const [id, el] of this._slots) {
      const messages = byField[id];
      const text = Array.isArray(messages) ? messages.join('\n') : messages ?? '';
      el.textContent = text;
      this._fields.get(id)?.classList.toggle('jp-mod-error', !!text);
      if (text) {
        this._controls.get(id)?.setAttribute('aria-invalid', 'true');
        first = first ?? id;
      } else {
        this._controls.get(id)?.removeAttribute('aria-invalid');
      }
    }
    generalEl.textContent = general.join('\n');
    if (first) {
      this._controls.get(first)?.focus();
    }
  }

  forget(prefix: string): void {
    for (const id of Array.from(this._slots.keys())) {
      if (id.startsWith(prefix)) {
        this._slots.delete(id);
        this._fields.delete(id);
        this._controls.delete(id);
      }
    }
  }

  private _slots = new Map<string, HTMLElement>();
  private _fields = new Map<string, HTMLElement>();
  private _controls = new Map<string, HTMLElement>();
}

export class ProjectDataView extends Widget {
  constructor(
    private readonly model: RunaiModel,
    project: string | null
  ) {
    super();
    this.addClass('jp-RunaiProjectData');
    this.addClass('jp-RunaiForm');
    this._project = project ?? model.info?.form?.defaults.project ?? 'default';
    this._projectSelect = h('select', {
      class: 'jp-mod-styled jp-RunaiProjectData-project',
      'aria-label': 'Project',
      onchange: () => {
        this._project = this._projectSelect.value;
        this._projectChanged.emit(this._project);
        void this._load();
      }
    });
    this._dsList = h('div', { class: 'jp-RunaiProjectData-list', 'aria-live': 'polite' });
    this._credList = h('div', { class: 'jp-RunaiProjectData-list', 'aria-live': 'polite' });
    this.node.appendChild(
      h(
        'div',
        { class: 'jp-RunaiProjectData-inner' },
        h(
          'header',
          { class: 'jp-RunaiProjectData-header' },
          h('h2', null, 'Data sources and credentials'),
          h('label', { class: 'jp-RunaiProjectData-projectLabel' }, 'Project ', this._projectSelect)
        ),
        h(
          'div',
          { class: 'jp-RunaiProjectData-columns' },
          h(
            'section',
            { class: 'jp-RunaiProjectData-section jp-RunaiProjectData-dataSources', 'aria-label': 'Data sources' },
            h('h3', null, 'Data sources'),
            h('p', { class: 'jp-RunaiProjectData-intro' }, 'Directories of the node or git repositories, attached to a workload by name; each appears at its target, relative to the working directory.'),
            this._dsList,
            this._buildDataSourceForm()
          ),
          h(
            'section',
            { class: 'jp-RunaiProjectData-section jp-RunaiProjectData-credentials', 'aria-label': 'Credentials' },
            h('h3', null, 'Credentials'),
            h('p', { class: 'jp-RunaiProjectData-intro' }, 'Secrets injected into a workload\u2019s pods as environment variables or files. Values are write-only: only the keys are ever shown.'),
            this._credList,
            this._buildCredentialForm()
          )
        )
      )
    );
    model.changed.connect(this._syncProjects, this);
    model.projectDataChanged.connect((_, p) => {
      if (p === this._project) {
        void this._load();
      }
    }, this);
    this._syncProjects();
    void this._load();
  }

  get project(): string {
    return this._project;
  }

  /** The user chose another project in the view. */
  get projectChanged(): ISignal<this, string> {
    return this._projectChanged;
  }

  /** Show another project's data sources and credentials. */
  showProject(project: string | null): void {
    if (project && project !== this._project) {
      this._project = project;
      this._projectSelect.value = project;
      void this._load();
    }
  }

  protected onAfterShow(msg: Message): void {
    void this._load();
  }

  private _syncProjects(): void {
    const names = this.model.projects.map(p => p.name);
    if (!names.length) {
      names.push(this._project);
    }
    if (this._projectSelect.options.length !== names.length || names.some((p, i) => this._projectSelect.options[i].value !== p)) {
      replaceChildren(this._projectSelect, names.map(p => h('option', { value: p }, p)));
    }
    this._projectSelect.value = this._project;
  }

  private async _load(): Promise<void> {
    const project = this._project;
    try {
      const [sources, credentials] = await Promise.all([this.model.dataSources(project), this.model.credentials(project)]);
      if (project !== this._project || this.isDisposed) {
        return;
      }
      this._renderDataSources(sources);
      this._renderCredentials(credentials);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      replaceChildren(this._dsList, h('div', { class: 'jp-RunaiSidebar-message', dataset: { kind: 'error' } }, text));
      replaceChildren(this._credList);
    }
  }

  private _deleteButton(kind: 'data source' | 'credential', name: string, remove: () => Promise<void>): HTMLElement {
    return h(
      'button',
      {
        class: 'jp-RunaiWorkload-action jp-RunaiWorkload-delete jp-RunaiProjectData-delete',
        'aria-label': `Delete ${kind} ${name}`,
        dataset: { focusKey: `${kind}:${name}` },
        onclick: async () => {
          const result = await showDialog({
            title: `Delete ${kind} ${name}?`,
            body: `Workloads that name it can no longer start (running ones keep what they have). This cannot be undone.`,
            buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
          });
          if (!result.button.accept) {
            return;
          }
          try {
            await remove();
            Notification.info(`Deleted ${kind} ${name}`, { autoClose: 3000 });
          } catch (error) {
            await showErrorMessage(`Cannot delete ${name}`, error as Error);
          }
        }
      },
      'Delete'
    );
  }

  private _renderDataSources(items: IDataSource[]): void {
    const project = this._project;
    replaceChildren(
      this._dsList,
      items.length
        ? h(
            'table',
            { class: 'jp-RunaiTable' },
            h('thead', null, h('tr', null, ['Name', 'Source', 'Target', 'Access', ''].map(c => h('th', null, c)))),
            h(
              'tbody',
              null,
              items.map(d =>
                h(
                  'tr',
                  { class: 'jp-RunaiProjectData-row', dataset: { name: d.name } },
                  h('td', { class: 'jp-RunaiProjectData-name jp-mod-nowrap' }, d.name),
                  h(
                    'td',
                    { class: 'jp-RunaiProjectData-source' },
                    h('span', { class: 'jp-RunaiProjectData-kind' }, d.kind === 'git' ? 'git repository' : 'host path'),
                    h('span', { class: 'jp-RunaiProjectData-path' }, breakAtSlashes(dataSourceSource(d)))
                  ),
                  h('td', { class: 'jp-RunaiProjectData-target' }, breakAtSlashes(d.target ?? '')),
                  h('td', { class: 'jp-mod-nowrap' }, dataSourceAccess(d)),
                  h('td', null, this._deleteButton('data source', d.name, () => this.model.deleteDataSource(project, d.name)))
                )
              )
            )
          )
        : h('div', { class: 'jp-RunaiProjectData-empty' }, `Project ${project} has no data sources yet.`)
    );
  }

  private _renderCredentials(items: ICredentialView[]): void {
    const project = this._project;
    replaceChildren(
      this._credList,
      items.length
        ? h(
            'table',
            { class: 'jp-RunaiTable' },
            h('thead', null, h('tr', null, ['Name', 'Injected as', ''].map(c => h('th', null, c)))),
            h(
              'tbody',
              null,
              items.map(c =>
                h(
                  'tr',
                  { class: 'jp-RunaiProjectData-row', dataset: { name: c.name } },
                  h('td', { class: 'jp-RunaiProjectData-name jp-mod-nowrap' }, c.name),
                  h('td', null, credentialSummary(c), h('span', { class: 'jp-RunaiProjectData-hidden', title: 'values are never shown' }, ' · values hidden')),
                  h('td', null, this._deleteButton('credential', c.name, () => this.model.deleteCredential(project, c.name)))
                )
              )
            )
          )
        : h('div', { class: 'jp-RunaiProjectData-empty' }, `Project ${project} has no credentials yet.`)
    );
  }

  // ------------------------------------------------------------------ data source form

  private _buildDataSourceForm(): HTMLElement {
    const f = this._dsErrors;
    let state: IDataSourceState = emptyDataSource();
    const general = h('div', { class: 'jp-RunaiForm-general', role: 'alert' });
    const input = (id: string, attrs: Record<string, any>, set: (v: string) => void) => {
      const el = h('input', {
        class: 'jp-mod-styled',
        id: `jp-runai-ds-${id}`,
        name: id,
        type: 'text',
        spellcheck: 'false',
        autocomplete: 'off',
        ...attrs,
        oninput: () => {
          set(el.value);
          f.clear(id);
          if (id === 'name') {
            target.placeholder = defaultTarget(el.value);
          }
        }
      });
      return el;
    };
    const name = input('name', { placeholder: 'e.g. imagenet' }, v => (state.name = v));
    const path = input('path', { placeholder: '/datasets/imagenet' }, v => (state.path = v));
    const url = input('url', { placeholder: 'https://github.com/org/repo.git' }, v => (state.url = v));
    const revision = input('revision', { placeholder: 'default branch' }, v => (state.revision = v));
    const target = input('target', { placeholder: defaultTarget('') }, v => (state.target = v));
    const radio = (group: string, value: string, label: string, checked: boolean, onPick: () => void) =>
      h('label', { class: 'jp-RunaiForm-mode' }, h('input', { type: 'radio', name: `jp-runai-ds-${group}`, value, checked, onchange: onPick }), h('span', null, label));
    const kind = h(
      'div',
      { class: 'jp-RunaiForm-modes', role: 'radiogroup', 'aria-label': 'Kind', id: 'jp-runai-ds-kind' },
      radio('kind', 'host_path', 'Host path', true, () => pick('host_path')),
      radio('kind', 'git', 'Git repository', false, () => pick('git'))
    );
    const access = h(
      'div',
      { class: 'jp-RunaiForm-modes', role: 'radiogroup', 'aria-label': 'Access', id: 'jp-runai-ds-access' },
      radio('access', 'ro', 'Read-only', true, () => (state.readOnly = true)),
      radio('access', 'rw', 'Read-write', false, () => (state.readOnly = false))
    );
    const fields = {
      path: f.field('path', 'Path', path, 'an absolute directory on the node'),
      access: f.field('access', 'Access', access, 'the local cluster cannot enforce read-only: a job can still write to the path'),
      url: f.field('url', 'URL', url, 'cloned when a pod starts; a private repository\u2019s token goes in a credential, never in the URL'),
      revision: f.field('revision', 'Revision', revision, 'branch, tag or commit')
    };
    const pick = (k: 'host_path' | 'git') => {
      state.kind = k;
      fields.path.hidden = fields.access.hidden = k !== 'host_path';
      fields.url.hidden = fields.revision.hidden = k !== 'git';
      f.clear('kind');
    };
    pick('host_path');
    const submit = h('button', { class: 'jp-mod-styled jp-mod-accept jp-RunaiProjectData-add', type: 'submit' }, 'Add data source');
    const form = h(
      'form',
      {
        class: 'jp-RunaiProjectData-form jp-RunaiProjectData-dsForm',
        novalidate: true,
        'aria-label': 'Add a data source',
        onsubmit: async (e: Event) => {
          e.preventDefault();
          submit.disabled = true;
          try {
            const created = await this.model.addDataSource(this._project, buildDataSource(state));
            f.show({}, [], general);
            form.reset();
            state = emptyDataSource();
            pick('host_path');
            target.placeholder = defaultTarget('');
            Notification.success(`Added data source ${created.name}: it appears at ${created.target}`, { autoClose: 4000 });
          } catch (error) {
            const placed = placeProjectDataErrors(error instanceof RunaiApiError ? error.body : null, DS_FIELDS, [], error instanceof Error ? error.message : String(error));
            f.show(placed.byField, placed.general, general);
          } finally {
            submit.disabled = false;
          }
        }
      },
      h('h4', null, 'Add a data source'),
      general,
      f.field('name', 'Name', name, 'lowercase letters, digits and -; used when submitting'),
      f.field('kind', 'Kind', kind),
      fields.path,
      fields.access,
      fields.url,
      fields.revision,
      f.field('target', 'Target', target, 'where it appears, relative to the working directory'),
      h('div', { class: 'jp-RunaiForm-buttons' }, submit)
    );
    return form;
  }

  // ------------------------------------------------------------------ credential form

  private _buildCredentialForm(): HTMLElement {
    const f = this._credErrors;
    let state: ICredentialState = emptyCredential();
    const general = h('div', { class: 'jp-RunaiForm-general', role: 'alert' });
    const name = h('input', {
      class: 'jp-mod-styled',
      id: 'jp-runai-cred-name',
      name: 'name',
      type: 'text',
      spellcheck: 'false',
      autocomplete: 'off',
      placeholder: 'e.g. hf-token',
      oninput: () => {
        state.name = name.value;
        f.clear('name');
      }
    });
    const mountPath = h('input', {
      class: 'jp-mod-styled',
      id: 'jp-runai-cred-mount_path',
      name: 'mount_path',
      type: 'text',
      spellcheck: 'false',
      autocomplete: 'off',
      placeholder: '.credentials/NAME',
      oninput: () => {
        state.mountPath = mountPath.value;
        f.clear('mount_path');
      }
    });
    const rowsBox = h('div', { class: 'jp-RunaiProjectData-rows', id: 'jp-runai-cred-rows' });
    const keyHint = h('div', { class: 'jp-RunaiField-hint' });
    const renderRows = () => {
      f.forget('row.');
      keyHint.textContent = state.injectAs === 'env' ? 'each key is an environment variable of every pod' : 'each key is a file (mode 0600) under the mount path';
      replaceChildren(
        rowsBox,
        state.rows.map((row, i) => {
          const key = h('input', {
            class: 'jp-mod-styled jp-RunaiProjectData-key',
            type: 'text',
            spellcheck: 'false',
            autocomplete: 'off',
            placeholder: state.injectAs === 'env' ? 'KEY' : 'file name',
            'aria-label': `Key ${i + 1}`,
            value: row.key,
            oninput: () => {
              row.key = key.value;
              f.clear(`row.${i}`);
            }
          });
          // a password input: the value is never shown, and the browser does not offer to save it
          const value = h('input', {
            class: 'jp-mod-styled jp-RunaiProjectData-value',
            type: 'password',
            autocomplete: 'new-password',
            spellcheck: 'false',
            placeholder: 'value',
            'aria-label': `Value ${i + 1}`,
            oninput: () => {
              row.value = value.value;
              f.clear(`row.${i}`);
            }
          });
          value.value = row.value;
          const remove = h(
            'button',
            {
              class: 'jp-RunaiWorkload-action jp-RunaiProjectData-removeRow',
              type: 'button',
              'aria-label': `Remove key ${i + 1}`,
              title: 'Remove this key',
              disabled: state.rows.length === 1,
              onclick: () => {
                state.rows.splice(i, 1);
                renderRows();
              }
            },
            '×'
          );
          const error = f.slot(`row.${i}`);
          const wrapper = h('div', { class: 'jp-RunaiProjectData-secretRow', dataset: { row: String(i) } }, h('div', { class: 'jp-RunaiProjectData-pair' }, key, value, remove), error);
          key.setAttribute('aria-describedby', error.id);
          f.register(`row.${i}`, wrapper, key);
          return wrapper;
        })
      );
    };
    const addRow = h(
      'button',
      {
        class: 'jp-mod-styled jp-RunaiProjectData-addRow',
        type: 'button',
        onclick: () => {
          state.rows.push({ key: '', value: '' });
          renderRows();
          rowsBox.querySelector<HTMLInputElement>('.jp-RunaiProjectData-secretRow:last-child .jp-RunaiProjectData-key')?.focus();
        }
      },
      '+ Add key'
    );
    const mountField = f.field('mount_path', 'Mount path', mountPath, 'directory of the files, relative to the working directory');
    const injectAs = h(
      'div',
      { class: 'jp-RunaiForm-modes', role: 'radiogroup', 'aria-label': 'Injected as', id: 'jp-runai-cred-inject_as' },
      (['env', 'file'] as const).map(v =>
        h(
          'label',
          { class: 'jp-RunaiForm-mode' },
          h('input', {
            type: 'radio',
            name: 'jp-runai-cred-inject_as',
            value: v,
            checked: v === 'env',
            onchange: () => {
              state.injectAs = v;
              mountField.hidden = v !== 'file';
              f.clear('inject_as');
              renderRows();
            }
          }),
          h('span', null, v === 'env' ? 'Environment variables' : 'Files')
        )
      )
    );
    mountField.hidden = true;
    renderRows();
    const submit = h('button', { class: 'jp-mod-styled jp-mod-accept jp-RunaiProjectData-add', type: 'submit' }, 'Save credential');
    const form: HTMLFormElement = h(
      'form',
      {
        class: 'jp-RunaiProjectData-form jp-RunaiProjectData-credForm',
        novalidate: true,
        autocomplete: 'off',
        'aria-label': 'Add a credential',
        onsubmit: async (e: Event) => {
          e.preventDefault();
          const built = buildCredential(state);
          if (!built.body) {
            f.show(built.errors, [], general);
            return;
          }
          submit.disabled = true;
          try {
            const created = await this.model.addCredential(this._project, built.body);
            f.show({}, [], general);
            // forget the values: the state, the inputs, the form
            state = emptyCredential();
            form.reset();
            mountField.hidden = true;
            renderRows();
            Notification.success(`Saved credential ${created.name} (${created.keys.join(', ')})`, { autoClose: 4000 });
          } catch (error) {
            const placed = placeProjectDataErrors(error instanceof RunaiApiError ? error.body : null, CRED_FIELDS, state.rows, error instanceof Error ? error.message : String(error));
            f.show(placed.byField, placed.general, general);
          } finally {
            built.body = null;
            submit.disabled = false;
          }
        }
      },
      h('h4', null, 'Add a credential'),
      general,
      f.field('name', 'Name', name, 'lowercase letters, digits and -; used when submitting'),
      f.field('inject_as', 'Injected as', injectAs),
      mountField,
      h(
        'div',
        { class: 'jp-RunaiField', dataset: { field: 'data' } },
        h('label', { class: 'jp-RunaiField-label' }, 'Keys and values'),
        h('div', { class: 'jp-RunaiField-control' }, rowsBox, keyHint, addRow)
      ),
      h('div', { class: 'jp-RunaiForm-buttons' }, submit)
    );
    return form;
  }

  private _project: string;
  private _projectChanged = new Signal<this, string>(this);
  private _projectSelect: HTMLSelectElement;
  private _dsList: HTMLElement;
  private _credList: HTMLElement;
  private _dsErrors = new FieldErrors('jp-runai-ds');
  private _credErrors = new FieldErrors('jp-runai-cred');
}

/** A path that wraps only after a "/": each directory name is kept whole (a name's own "-"
 * is no place to break), so a narrow column wraps it between directories, never every few
 * characters. */
function breakAtSlashes(path: string): HTMLElement[] {
  const out: HTMLElement[] = [];
  for (const part of path.split(/(?<=\/)/)) {
    if (out.length) {
      out.push(h('wbr'));
    }
    out.push(h('span', { class: 'jp-RunaiProjectData-pathPart' }, part));
  }
  return out;
}
