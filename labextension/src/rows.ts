/** One workload's row in the sidebar list, patched in place from its view (logic/rows.ts). */

import { runAction } from './actions';
import { h, patchChildren, replaceChildren } from './dom';
import { ageOf } from './logic/format';
import { changedParts, IRowView, RowAction, ROW_ACTIONS } from './logic/rows';
import { IWorkload } from './logic/types';
import { RunaiModel } from './model';

export interface IRowCommands {
  openLogs: (project: string, name: string) => void;
  openDetails: (project: string, name: string) => void;
}

const ACTION_TEXT: Record<RowAction, { label: string; title: string }> = {
  logs: { label: 'Logs', title: 'Follow its output' },
  stop: { label: 'Stop', title: 'End its pods; it stays in the list and can be resumed' },
  resume: { label: 'Resume', title: 'Put it back in the queue' },
  delete: { label: 'Delete', title: 'Stop it and remove it' }
};

export class WorkloadRow {
  readonly node: HTMLLIElement;

  constructor(
    private readonly model: RunaiModel,
    private readonly commands: IRowCommands,
    /** keys of the rows whose "more" reasons are open (kept by the sidebar across rows) */
    private readonly openMore: Set<string>
  ) {
    this._name = h('button', {
      class: 'jp-RunaiWorkload-name',
      onclick: () => this._view && this.commands.openDetails(this._view.project, this._view.name)
    });
    this._project = h('span', { class: 'jp-RunaiWorkload-project' });
    this._chip = h('span', { class: 'jp-RunaiChip' });
    this._meta = h('div', { class: 'jp-RunaiWorkload-meta' });
    this._age = h('span', { class: 'jp-RunaiWorkload-age' });
    this._why = h('div', { class: 'jp-RunaiWorkload-why' });
    this._message = h('div', { class: 'jp-RunaiWorkload-message' });
    this._actions = h('div', { class: 'jp-RunaiWorkload-actions' });
    this.node = h(
      'li',
      { class: 'jp-RunaiWorkload' },
      h('div', { class: 'jp-RunaiWorkload-head' }, this._name, this._chip),
      this._meta,
      this._why,
      this._message,
      this._actions
    );
  }

  /** The workload as the list knows it now (what the buttons act on). */
  get workload(): IWorkload | null {
    return this._workload;
  }

  update(view: IRowView, w: IWorkload, now: number): void {
    this._workload = w;
    const parts = changedParts(this._view, view);
    this._view = view;
    this._age.textContent = ageOf(w, now);
    if (!parts.length) {
      return;
    }
    const { key, name, project } = view;
    if (parts.includes('head')) {
      Object.assign(this.node.dataset, { key, name, project, phase: view.phase, kind: w.spec.kind });
      this._name.textContent = name;
      this._name.title = `Details of ${project}/${name}: spec, pods, events`;
      this._name.setAttribute('aria-label', `Details of ${name}`);
      this._name.dataset.focusKey = `${key}:name`;
      this._project.textContent = project;
      if (view.showProject && !this._project.parentElement) {
        this._chip.before(this._project);
      } else if (!view.showProject) {
        this._project.remove();
      }
      this._chip.className = `jp-RunaiChip jp-RunaiChip--${view.chipClass}`;
      this._chip.title = view.chipTitle;
      this._chip.textContent = view.phase;
    }
    if (parts.includes('meta')) {
      this.node.dataset.kind = w.spec.kind;
      replaceChildren(
        this._meta,
        h('span', { class: 'jp-RunaiWorkload-kind' }, view.kind),
        h('span', { class: 'jp-RunaiWorkload-gpu', title: view.gpuTitle }, view.gpuLabel),
        view.pods ? h('span', null, view.pods) : null,
        this._age
      );
    }
    if (parts.includes('why')) {
      this._renderWhy(view);
    }
    if (parts.includes('message')) {
      this._message.textContent = view.message ?? '';
      this._message.hidden = !view.message;
    }
    if (parts.includes('actions')) {
      this._renderActions(view);
    }
  }

  private _renderWhy(view: IRowView): void {
    const why = view.pending;
    this._why.hidden = !why && !view.evicted;
    if (!why && !view.evicted) {
      replaceChildren(this._why);
      return;
    }
    const key = view.key;
    const details = why?.details ?? [];
    replaceChildren(
      this._why,
      view.evicted ? h('div', { class: 'jp-RunaiWorkload-evicted' }, view.evicted) : null,
      why
        ? h(
            'div',
            { class: 'jp-RunaiWorkload-pending' },
            h('div', { class: 'jp-RunaiWorkload-pendingSummary' }, why.summary),
            view.queue ? h('div', { class: 'jp-RunaiWorkload-queue' }, view.queue) : null,
            details.length ? h('ul', { class: 'jp-RunaiWorkload-pendingDetails' }, details.slice(0, 2).map(d => h('li', null, d))) : null,
            details.length > 2
              ? h(
                  'details',
                  {
                    class: 'jp-RunaiWorkload-pendingMore',
                    open: this.openMore.has(key),
                    ontoggle: (e: Event) => {
                      if ((e.target as HTMLDetailsElement).open) {
                        this.openMore.add(key);
                      } else {
                        this.openMore.delete(key);
                      }
                    }
                  },
                  h('summary', { dataset: { focusKey: `${key}:more` } }, 'more'),
                  h('ul', { class: 'jp-RunaiWorkload-pendingDetails' }, details.slice(2).map(d => h('li', null, d)))
                )
              : null
          )
        : null
    );
  }

  /** The action buttons are kept while they apply: a button under the pointer is never replaced. */
  private _renderActions(view: IRowView): void {
    const wanted: HTMLElement[] = [];
    // Open ↗: a link whose address may change; kept as one element
    if (view.openUrl) {
      if (!this._open) {
        this._open = h('a', { class: 'jp-RunaiWorkload-open', target: '_blank', rel: 'noopener' }, 'Open ↗');
      }
      this._open.href = view.openUrl;
      this._open.title = `Open ${view.name} in a new tab`;
      this._open.dataset.focusKey = `${view.key}:open`;
      wanted.push(this._open);
    }
    for (const action of ROW_ACTIONS) {
      let button = this._buttons.get(action);
      if (!view.actions.includes(action)) {
        if (button) {
          this._buttons.delete(action);
        }
        continue;
      }
      if (!button) {
        button = h(
          'button',
          { class: `jp-RunaiWorkload-action jp-RunaiWorkload-${action}`, onclick: () => this._act(action) },
          ACTION_TEXT[action].label
        );
        this._buttons.set(action, button);
      }
      button.title = ACTION_TEXT[action].title;
      button.setAttribute('aria-label', `${ACTION_TEXT[action].label} ${view.name}`);
      button.dataset.focusKey = `${view.key}:${action}`;
      wanted.push(button);
    }
    patchChildren(this._actions, wanted);
  }

  private _act(action: RowAction): void {
    const w = this._workload;
    if (!w) {
      return;
    }
    if (action === 'logs') {
      this.commands.openLogs(w.spec.project, w.spec.name);
    } else {
      void runAction(this.model, action, w);
    }
  }

  private _view: IRowView | null = null;
  private _workload: IWorkload | null = null;
  private _name: HTMLButtonElement;
  private _project: HTMLElement;
  private _chip: HTMLElement;
  private _meta: HTMLElement;
  private _age: HTMLElement;
  private _why: HTMLElement;
  private _message: HTMLElement;
  private _actions: HTMLElement;
  private _open: HTMLAnchorElement | null = null;
  private _buttons = new Map<RowAction, HTMLButtonElement>();
}
