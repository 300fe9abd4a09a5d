/**
 * The Admin view (main area; admins only, the server refuses anyone else anyway): departments,
 * projects and node pools (list, create, edit, delete), workload policies per scope and kind
 * (as JSON), role bindings (list, grant, revoke) and the audit log (read only). The server's
 * field errors show beside the fields; every field has a tooltip saying what it means.
 */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { postJSON, requestAPI, RunaiApiError } from './api';
import { h, replaceChildren } from './dom';
import {
  auditChanges,
  BINDING_FIELDS,
  bindingBody,
  bindingLabel,
  compactPolicy,
  FormValues,
  IAuditEntry,
  IBinding,
  IFieldSpec,
  INodePool,
  IQueue,
  parseJsonObject,
  POOL_FIELDS,
  poolBody,
  poolForm,
  QUEUE_FIELDS,
  queueBody,
  queueForm,
  queueSummary
} from './logic/admin';
import { adminForm, BuildRequest, IEditing } from './adminform';
import { IPolicyEditing, policyForm } from './adminpolicy';
import { IInherited, IPolicyDoc, IPolicyField, policyToForm } from './logic/policyform';
import { RunaiModel } from './model';

import type { AdminTab } from './adminform';

export type { AdminTab };

const TABS: [AdminTab, string, string][] = [
  ['projects', 'Projects', 'Quotas, limits, weights and priorities of projects'],
  ['departments', 'Departments', 'Quotas and limits of departments: they bound their projects'],
  ['node-pools', 'Node pools', 'Groups of nodes by label, with their placement strategy'],
  ['policies', 'Policies', 'Workload defaults and rules per scope and kind'],
  ['access', 'Access', 'Role bindings: who may do what, where'],
  ['audit', 'Audit log', 'Who changed what, when, before and after (read only)']
];

interface IPolicy {
  scope: string;
  name?: string | null;
  kind: string;
  defaults: Record<string, unknown>;
  rules: Record<string, unknown>;
}


export class AdminView extends Widget {
  constructor(private readonly model: RunaiModel) {
    super();
    this.id = 'jupyter-runai-admin';
    this.addClass('jp-RunaiAdmin');
    this.title.label = 'GPU admin';
    this.title.closable = true;
    this._render();
  }

  protected onAfterShow(msg: Message): void {
    void this._load();
  }

  protected onAfterAttach(msg: Message): void {
    void this._load();
  }

  /** the tab shown (the layout restorer reopens it) */
  get tab(): AdminTab {
    return this._tab;
  }

  get tabChanged(): ISignal<this, AdminTab> {
    return this._tabChanged;
  }

  /** Switch to a tab (also from the restorer: `runai:open-admin` with `tab`). */
  showTab(tab: AdminTab): void {
    if (tab !== this._tab) {
      this._tab = tab;
      this._tabChanged.emit(tab);
    }
    this._editing = null;
    this._policyEditing = null;
    this._refused = null;
    this._render();
    void this._load();
  }

  private async _load(): Promise<void> {
    const tab = this._tab;
    try {
      if (tab === 'projects' || tab === 'departments') {
        const [p, d] = await Promise.all([requestAPI<{ projects: IQueue[] }>('projects'), requestAPI<{ departments: IQueue[] }>('departments')]);
        this._projects = p.projects;
        this._departments = d.departments;
      } else if (tab === 'node-pools') {
        this._pools = (await requestAPI<{ node_pools: INodePool[] }>('node-pools')).node_pools;
      } else if (tab === 'policies') {
        const [listed, p, d, pools] = await Promise.all([
          requestAPI<{ policies: IPolicy[]; fields?: IPolicyField[] }>('policies'),
          requestAPI<{ projects: IQueue[] }>('projects'),
          requestAPI<{ departments: IQueue[] }>('departments'),
          requestAPI<{ node_pools: INodePool[] }>('node-pools')
        ]);
        this._pools = pools.node_pools;
        this._policies = listed.policies;
        this._policyFields = listed.fields ?? [];
        this._projects = p.projects;
        this._departments = d.departments;
      } else if (tab === 'access') {
        this._bindings = (await requestAPI<{ bindings: IBinding[] }>('access/bindings')).bindings;
      } else {
        this._audit = (await requestAPI<{ entries: IAuditEntry[] }>('audit?limit=200')).entries;
      }
      this._error = null;
    } catch (error) {
      this._error = error instanceof RunaiApiError ? error.message : String(error);
    }
    this._render();
  }

  private _render(): void {
    const tabs = h(
      'div',
      { class: 'jp-RunaiAdmin-tabs', role: 'tablist' },
      TABS.map(([id, label, title]) =>
        h(
          'button',
          {
            class: `jp-mod-styled jp-RunaiAdmin-tab${id === this._tab ? ' jp-mod-active' : ''}`,
            role: 'tab',
            'aria-selected': id === this._tab ? 'true' : 'false',
            title,
            dataset: { tab: id },
            onclick: () => this.showTab(id)
          },
          label
        )
      )
    );
    let body: (HTMLElement | null)[];
    switch (this._tab) {
      case 'projects':
        body = this._queues(true);
        break;
      case 'departments':
        body = this._queues(false);
        break;
      case 'node-pools':
        body = this._poolsView();
        break;
      case 'policies':
        body = this._policiesView();
        break;
      case 'access':
        body = this._accessView();
        break;
      default:
        body = [this._auditView()];
    }
    replaceChildren(
      this.node,
      h('header', { class: 'jp-RunaiAdmin-header' }, h('h2', null, 'GPU administration'), h('span', { class: 'jp-RunaiAdmin-note' }, 'Changes take effect at the next scheduling cycle and never evict in-quota work by themselves; each is recorded in the audit log.')),
      tabs,
      this._error ? h('div', { class: 'jp-RunaiSidebar-message', dataset: { kind: 'error' } }, this._error) : null,
      this._refused ? h('div', { class: 'jp-RunaiSidebar-message jp-RunaiAdmin-refused', dataset: { kind: 'error' }, role: 'alert' }, this._refused) : null,
      body
    );
  }

  // ------------------------------------------------------------ departments and projects

  private _queues(projects: boolean): (HTMLElement | null)[] {
    const tab: AdminTab = projects ? 'projects' : 'departments';
    const list = projects ? this._projects : this._departments;
    const what = projects ? 'project' : 'department';
    const fields = QUEUE_FIELDS.filter(f => projects || f.id !== 'department').map(f => (f.id === 'department' ? { ...f, choices: this._departments.map(d => d.name) } : f));
    const editing = this._editing?.tab === tab ? this._editing : null;
    const rows = list.map(q =>
      h(
        'tr',
        { dataset: { name: q.name } },
        h('td', { class: 'jp-RunaiAdmin-name' }, q.name),
        projects ? h('td', null, q.department ?? '') : h('td', null, (q.projects ?? []).join(', ')),
        h('td', { class: 'jp-RunaiAdmin-summary' }, queueSummary(q)),
        h(
          'td',
          { class: 'jp-RunaiAdmin-actions' },
          h('button', { class: 'jp-mod-styled jp-RunaiAdmin-edit', title: `Change ${what} ${q.name}`, onclick: () => this._open(tab, q.name, queueForm(q)) }, 'Edit'),
          h('button', { class: 'jp-mod-styled jp-mod-warn jp-RunaiAdmin-delete', title: `Delete ${what} ${q.name}`, onclick: () => void this._delete(tab, `${tab}/${encodeURIComponent(q.name)}`, `${what} ${q.name}`) }, 'Delete')
        )
      )
    );
    return [
      h('div', { class: 'jp-RunaiAdmin-bar' }, h('button', { class: 'jp-mod-styled jp-mod-accept jp-RunaiAdmin-new', onclick: () => this._open(tab, null, queueForm(null, this._departments[0]?.name ?? '')) }, `+ New ${what}`)),
      editing
        ? this._form(fields, editing, editing.key ? `${what} ${editing.key}` : `New ${what}`, values => {
            const built = queueBody(values, editing.before, projects);
            const path = editing.key ? `${tab}/${encodeURIComponent(editing.key)}` : tab;
            return { built, send: () => requestAPI(path, { method: editing.key ? 'PATCH' : 'POST', body: JSON.stringify(built.body) }) };
          })
        : null,
      h(
        'table',
        { class: 'jp-RunaiTable jp-RunaiAdmin-table', 'aria-label': projects ? 'Projects' : 'Departments' },
        h('thead', null, h('tr', null, h('th', null, projects ? 'Project' : 'Department'), h('th', null, projects ? 'Department' : 'Projects'), h('th', null, 'Quota'), h('th', null, ''))),
        h('tbody', null, rows)
      )
    ];
  }

  // ------------------------------------------------------------ node pools

  private _poolsView(): (HTMLElement | null)[] {
    const editing = this._editing?.tab === 'node-pools' ? this._editing : null;
    const rows = this._pools.map(p =>
      h(
        'tr',
        { dataset: { name: p.name } },
        h('td', { class: 'jp-RunaiAdmin-name' }, p.name),
        h('td', null, Object.keys(p.label_selector).length ? Object.entries(p.label_selector).map(([k, v]) => `${k}=${v}`).join(', ') : 'every node'),
        h('td', null, `GPU ${p.gpu_placement} · CPU ${p.cpu_placement} · devices ${p.device_placement}`),
        h('td', null, (p.nodes ?? []).join(', ') || 'none'),
        h(
          'td',
          { class: 'jp-RunaiAdmin-actions' },
          h('button', { class: 'jp-mod-styled jp-RunaiAdmin-edit', onclick: () => this._open('node-pools', p.name, poolForm(p)) }, 'Edit'),
          h('button', { class: 'jp-mod-styled jp-mod-warn jp-RunaiAdmin-delete', onclick: () => void this._delete('node-pools', `node-pools/${encodeURIComponent(p.name)}`, `node pool ${p.name}`) }, 'Delete')
        )
      )
    );
    return [
      h('div', { class: 'jp-RunaiAdmin-bar' }, h('button', { class: 'jp-mod-styled jp-mod-accept jp-RunaiAdmin-new', onclick: () => this._open('node-pools', null, poolForm(null)) }, '+ New node pool')),
      editing
        ? this._form(POOL_FIELDS, editing, editing.key ? `node pool ${editing.key}` : 'New node pool', values => {
            const built = poolBody(values, editing.before);
            const path = editing.key ? `node-pools/${encodeURIComponent(editing.key)}` : 'node-pools';
            return { built, send: () => requestAPI(path, { method: editing.key ? 'PATCH' : 'POST', body: JSON.stringify(built.body) }) };
          })
        : null,
      this._pools.length
        ? h(
            'table',
            { class: 'jp-RunaiTable jp-RunaiAdmin-table', 'aria-label': 'Node pools' },
            h('thead', null, h('tr', null, h('th', null, 'Node pool'), h('th', { title: 'Labels a node must carry to join' }, 'Label selector'), h('th', null, 'Placement'), h('th', null, 'Nodes'), h('th', null, ''))),
            h('tbody', null, rows)
          )
        : h('div', { class: 'jp-RunaiSidebar-message' }, 'No node pools: every node is in the default pool.')
    ];
  }

  // ------------------------------------------------------------ policies

  private _policiesView(): (HTMLElement | null)[] {
    const editing = this._editing?.tab === 'policies' ? this._editing : null;
    const field: IFieldSpec = {
      id: 'policy',
      label: 'Policy (JSON)',
      rows: 14,
      wide: true,
      help: 'scope (cluster, department or project), name (unless cluster), kind (workspace, training, distributed or inference), defaults (field -> value) and rules (field -> {required, min, max, step, allowed, can_edit}). A lower scope may only tighten a wider one. See docs/admin.md.'
    };
    const cards = this._policies.map(p => {
      const key = policyKey(p);
      return h(
        'section',
        { class: 'jp-RunaiAdmin-policy', dataset: { policy: key } },
        h(
          'div',
          { class: 'jp-RunaiAdmin-policyHead' },
          h('strong', null, p.scope === 'cluster' ? 'cluster' : `${p.scope} ${p.name}`),
          h('span', { class: 'jp-RunaiBadge' }, p.kind),
          h('button', { class: 'jp-mod-styled jp-RunaiAdmin-edit', title: 'Change it in the guided form (or as JSON from there)', onclick: () => this._openPolicy(key, p as IPolicyDoc) }, 'Edit'),
          h(
            'button',
            {
              class: 'jp-mod-styled jp-mod-warn jp-RunaiAdmin-delete',
              onclick: () => {
                const q = new URLSearchParams({ scope: p.scope, kind: p.kind });
                if (p.name) {
                  q.set('name', p.name);
                }
                void this._delete('policies', `policies?${q.toString()}`, `the ${p.kind} policy of ${key}`);
              }
            },
            'Delete'
          )
        ),
        h('pre', { class: 'jp-RunaiAdmin-json' }, JSON.stringify(compactPolicy({ defaults: p.defaults, rules: p.rules }), null, 2))
      );
    });
    return [
      h('div', { class: 'jp-RunaiAdmin-bar' }, h('button', { class: 'jp-mod-styled jp-mod-accept jp-RunaiAdmin-new', onclick: () => this._openPolicy(null, { scope: 'project', name: this._projects[0]?.name ?? '', kind: 'training', defaults: {}, rules: {} }) }, '+ New policy')),
      this._policyEditing ? this._guidedPolicy(this._policyEditing) : null,
      editing
        ? this._form([field], editing, editing.key ? `policy of ${editing.key}` : 'New policy', values => {
            const parsed = parseJsonObject(values.policy ?? '');
            const built: { body: Record<string, unknown>; errors: Record<string, string> } = typeof parsed === 'string' ? { body: {}, errors: { policy: parsed } } : { body: parsed, errors: {} };
            return { built, send: () => requestAPI('policies', { method: 'PUT', body: JSON.stringify(built.body) }) };
          })
        : null,
      cards.length ? h('div', { class: 'jp-RunaiAdmin-policies' }, cards) : h('div', { class: 'jp-RunaiSidebar-message' }, 'No policies: submissions get the built-in defaults.')
    ];
  }

  /** Open the guided form on a policy (a new one: empty rows), and read what the wider scopes set. */
  private _openPolicy(key: string | null, p: IPolicyDoc): void {
    this._refused = null;
    this._editing = null;
    this._policyEditing = { key, values: policyToForm(p), inherited: null, inheritedError: null, byRow: {}, general: [], busy: false };
    this._render();
    void this._loadInherited();
  }

  /** What the scopes wider than the form's scope set for its kind (`GET policies/inherited`). */
  private async _loadInherited(): Promise<void> {
    const editing = this._policyEditing;
    if (!editing) {
      return;
    }
    const { scope, name, kind } = editing.values;
    const q = new URLSearchParams({ scope: scope || 'cluster', kind: kind || 'training' });
    if (scope !== 'cluster' && name) {
      q.set('name', name);
    }
    try {
      const inherited = await requestAPI<IInherited>(`policies/inherited?${q.toString()}`);
      if (this._policyEditing === editing && editing.values.scope === scope && editing.values.name === name && editing.values.kind === kind) {
        editing.inherited = inherited;
        editing.inheritedError = null;
      }
    } catch (error) {
      if (this._policyEditing === editing) {
        editing.inherited = null;
        editing.inheritedError = error instanceof RunaiApiError ? error.message : String(error);
      }
    }
    this._render();
  }

  private _guidedPolicy(editing: IPolicyEditing): HTMLElement {
    return policyForm({
      editing,
      fields: this._policyFields,
      departments: this._departments.map(d => d.name),
      projects: this._projects.map(p => p.name),
      nodePools: this._pools.map(p => p.name),
      targetChanged: () => {
        editing.byRow = {};
        editing.general = [];
        this._render();
        void this._loadInherited();
      },
      rerender: () => this._render(),
      send: body => requestAPI('policies', { method: 'PUT', body: JSON.stringify(body) }),
      saved: async () => {
        this._policyEditing = null;
        this.model.wake();
        await this._load();
      },
      cancel: () => {
        this._policyEditing = null;
        this._render();
      },
      asJson: body => {
        const key = editing.key;
        this._policyEditing = null;
        this._open('policies', key, { policy: JSON.stringify(compactPolicy(body), null, 2) });
      }
    });
  }

  // ------------------------------------------------------------ role bindings

  private _accessView(): (HTMLElement | null)[] {
    const editing = this._editing?.tab === 'access' ? this._editing : null;
    const rows = this._bindings.map(b =>
      h(
        'tr',
        { dataset: { binding: String(b.id ?? '') } },
        h('td', null, b.role),
        h('td', null, b.user !== undefined ? `user ${b.user}` : `group ${b.group}`),
        h('td', null, b.project ? `project ${b.project}` : b.department ? `department ${b.department}` : 'cluster'),
        h('td', { title: b.source === 'config' ? 'seeded from the configuration: change it there' : 'granted at runtime' }, b.source),
        h(
          'td',
          { class: 'jp-RunaiAdmin-actions' },
          b.id === null ? null : h('button', { class: 'jp-mod-styled jp-mod-warn jp-RunaiAdmin-delete', onclick: () => void this._delete('access', `access/bindings/${b.id}`, bindingLabel(b), 'Revoke') }, 'Revoke')
        )
      )
    );
    return [
      h('div', { class: 'jp-RunaiAdmin-bar' }, h('button', { class: 'jp-mod-styled jp-mod-accept jp-RunaiAdmin-new', onclick: () => this._open('access', null, { role: 'researcher', subject: 'user', name: '', scope: 'project', scope_name: '' }) }, '+ Grant a role')),
      editing
        ? this._form(
            BINDING_FIELDS,
            editing,
            'Grant a role',
            values => {
              const body = bindingBody(values);
              return { built: { body, errors: {} }, send: () => postJSON('access/bindings', body) };
            },
            true
          )
        : null,
      h(
        'table',
        { class: 'jp-RunaiTable jp-RunaiAdmin-table', 'aria-label': 'Role bindings' },
        h('thead', null, h('tr', null, h('th', null, 'Role'), h('th', null, 'Who'), h('th', null, 'On'), h('th', null, 'Source'), h('th', null, ''))),
        h('tbody', null, rows)
      )
    ];
  }

  // ------------------------------------------------------------ audit log

  private _auditView(): HTMLElement {
    if (!this._audit.length) {
      return h('div', { class: 'jp-RunaiSidebar-message' }, 'No changes recorded yet.');
    }
    return h(
      'table',
      { class: 'jp-RunaiTable jp-RunaiAdmin-table jp-RunaiAdmin-audit', 'aria-label': 'Audit log' },
      h('thead', null, h('tr', null, h('th', null, 'When'), h('th', null, 'Who'), h('th', null, 'What'), h('th', null, 'Changes'))),
      h(
        'tbody',
        null,
        [...this._audit].reverse().map(e =>
          h(
            'tr',
            { dataset: { entry: String(e.id) } },
            h('td', { title: e.at }, new Date(e.at).toLocaleString()),
            h('td', null, e.user),
            h('td', null, `${e.action} ${e.kind.replace('_', ' ')} ${e.name}`),
            h('td', { class: 'jp-RunaiAdmin-changes' }, auditChanges(e).join('; '))
          )
        )
      )
    );
  }

  // ------------------------------------------------------------ forms

  private _open(tab: AdminTab, key: string | null, values: FormValues): void {
    this._refused = null;
    this._policyEditing = null;
    this._editing = { tab, key, before: key === null ? null : { ...values }, values: { ...values }, placed: { byField: {}, general: [] }, busy: false };
    this._render();
    this.node.querySelector<HTMLElement>('.jp-RunaiAdmin-form input:not([disabled]), .jp-RunaiAdmin-form select, .jp-RunaiAdmin-form textarea')?.focus();
  }

  /** The open form, in `adminForm`; a saved change reloads the tab and refreshes the sidebar. */
  private _form(fields: IFieldSpec[], editing: IEditing, title: string, build: BuildRequest, binding = false): HTMLElement {
    return adminForm({
      fields,
      editing,
      title,
      build,
      binding,
      rerender: () => this._render(),
      cancel: () => {
        this._editing = null;
        this._render();
      },
      saved: async () => {
        this._editing = null;
        this.model.wake(); // the sidebar and the cluster view show the change
        await this._load();
      }
    });
  }

  private async _delete(tab: AdminTab, path: string, what: string, verb = 'Delete'): Promise<void> {
    const answer = await showDialog({
      title: `${verb} ${what}?`,
      body: verb === 'Revoke' ? 'The role is taken away at once; the change is recorded in the audit log.' : 'This cannot be undone; the change is recorded in the audit log.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: verb })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await requestAPI(path, { method: 'DELETE' });
      this._refused = null;
      this.model.wake();
    } catch (error) {
      // a refusal (409: the project still has workloads) says why; nothing was deleted
      this._refused = error instanceof RunaiApiError ? error.message : String(error);
    }
    await this._load();
  }

  private _tab: AdminTab = 'projects';
  private _tabChanged = new Signal<this, AdminTab>(this);
  private _editing: IEditing | null = null;
  private _error: string | null = null;
  /** the server's refusal of the last delete or revoke */
  private _refused: string | null = null;
  private _projects: IQueue[] = [];
  private _departments: IQueue[] = [];
  private _pools: INodePool[] = [];
  private _policies: IPolicy[] = [];
  private _policyFields: IPolicyField[] = [];
  private _policyEditing: IPolicyEditing | null = null;
  private _bindings: IBinding[] = [];
  private _audit: IAuditEntry[] = [];
}

function policyKey(p: IPolicy): string {
  return p.scope === 'cluster' ? `cluster/${p.kind}` : `${p.scope} ${p.name}/${p.kind}`;
}
