/** A workload's details in the main area (what `runai describe` shows): its spec in words, the
 * pending reason, its pods and its latest events, kept live; with its actions. */

import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { runAction } from './actions';
import { RunaiApiError } from './api';
import { copySubmitLine } from './copyline';
import { h, patchChildren, replaceChildren } from './dom';
import { eventClass, latestEvents, podRow, specRows } from './logic/details';
import { ageLabel, phaseClass, queueLabel } from './logic/format';
import { IWorkloadSpec, IWorkloadWithEvents } from './logic/types';
import { availableActions, explainPending, openUrl } from './logic/workloads';
import { RunaiModel } from './model';

export interface IDetailsCommands {
  openLogs: (project: string, name: string, pod?: number) => void;
  /** the New workload form, filled in from this spec */
  clone: (spec: IWorkloadSpec) => void;
}

const DETAILS_ACTIONS = {
  logs: { label: 'Logs', title: 'Follow its output' },
  stop: { label: 'Stop', title: 'End its pods; it stays and can be resumed' },
  resume: { label: 'Resume', title: 'Put it back in the queue' },
  delete: { label: 'Delete', title: 'Stop it and remove it' },
  copy: { label: 'Copy as runai submit', title: 'Copy the command line that submits the same workload with the runai CLI' },
  clone: { label: 'Clone', title: 'Open the New workload form filled in with this workload\u2019s spec' }
};

export class WorkloadDetails extends Widget {
  constructor(
    private readonly model: RunaiModel,
    readonly project: string,
    readonly workload: string,
    private readonly commands: IDetailsCommands
  ) {
    super();
    this.addClass('jp-RunaiDetails');
    this.node.tabIndex = -1;
    this._unregister = model.addViewer(() => this.isVisible);
    model.changed.connect(this._schedule, this);
    this._body = h('div', { class: 'jp-RunaiDetails-body' }, h('div', { class: 'jp-RunaiSidebar-message' }, 'Loading…'));
    this.node.appendChild(this._body);
    void this._fetch();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._unregister();
    window.clearTimeout(this._timer);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    this._schedule();
  }

  /** The workload as last fetched (tests, commands). */
  get current(): IWorkloadWithEvents | null {
    return this._workload;
  }

  private _schedule(): void {
    if (this._timer || this.isDisposed) {
      return;
    }
    // events come in bursts: at most one fetch per detailsRefreshMs (a setting)
    const wait = Math.max(0, this._last + this.model.settings.detailsRefreshMs - Date.now());
    this._timer = window.setTimeout(() => {
      this._timer = 0;
      void this._fetch();
    }, wait);
  }

  private async _fetch(): Promise<void> {
    if (this._fetching) {
      this._again = true;
      return;
    }
    this._fetching = true;
    this._last = Date.now();
    try {
      this._workload = await this.model.getWorkload(this.project, this.workload, 50);
      this._gone = false;
      this._error = null;
    } catch (error) {
      if (error instanceof RunaiApiError && error.status === 404) {
        this._gone = true;
      } else {
        this._error = error instanceof Error ? error.message : String(error);
      }
    } finally {
      this._fetching = false;
    }
    if (!this.isDisposed) {
      this._render();
      if (this._again) {
        this._again = false;
        this._schedule();
      }
    }
  }

  private _render(): void {
    const w = this._workload;
    if (!w) {
      replaceChildren(
        this._body,
        h('div', { class: 'jp-RunaiSidebar-message', dataset: { kind: this._error ? 'error' : 'info' } }, this._gone ? `${this.project}/${this.workload} does not exist (deleted).` : this._error ?? 'Loading…')
      );
      return;
    }
    const now = Date.now();
    const phase = this._gone ? 'Deleted' : w.status.phase;
    const actions = availableActions(w);
    const url = openUrl(w);
    const name = w.spec.name;
    // the header's buttons are kept from one refresh to the next (a press spanning a refresh
    // lands) and act on the workload as it is now
    replaceChildren(
      this._titleRow,
      h('h2', { class: 'jp-RunaiDetails-title' }, name),
      h('span', { class: `jp-RunaiChip jp-RunaiChip--${this._gone ? 'stopped' : phaseClass(phase)}` }, phase),
      h('span', { class: 'jp-RunaiDetails-project' }, `project ${w.spec.project}`)
    );
    const wanted: HTMLElement[] = [];
    if (this._gone) {
      wanted.push(this._goneNote, this._actionButton('copy'), this._actionButton('clone'));
    } else {
      if (url) {
        this._open.href = url;
        wanted.push(this._open);
      }
      for (const action of ['logs', 'stop', 'resume', 'delete'] as const) {
        if (actions[action]) {
          wanted.push(this._actionButton(action));
        }
      }
      wanted.push(this._actionButton('copy'), this._actionButton('clone'));
    }
    patchChildren(this._actions, wanted);
    const header = this._header;

    let pending: HTMLElement | null = null;
    if (!this._gone && w.status.phase === 'Pending') {
      const why = explainPending(w.status.pending_reason);
      pending = h(
        'section',
        { class: 'jp-RunaiDetails-pending', 'aria-label': 'Why it waits' },
        h('h3', null, why.summary),
        w.status.queue_position ? h('p', { class: 'jp-RunaiDetails-queue' }, queueLabel(w.status.queue_position)) : null,
        why.details.length ? h('ul', null, why.details.map(d => h('li', null, d))) : null
      );
    }

    const spec = h(
      'section',
      { class: 'jp-RunaiDetails-section', 'aria-label': 'Spec' },
      h('h3', null, 'Spec'),
      h(
        'dl',
        { class: 'jp-RunaiDetails-spec' },
        specRows(w, now).flatMap(r => [h('dt', { dataset: { key: r.key } }, r.label), h('dd', { dataset: { key: r.key }, title: r.title }, r.value)])
      )
    );

    const pods = w.status.pods;
    const podsKey = JSON.stringify(pods);
    if (podsKey === this._podsKey && this._podsSection) {
      // the same pods: the table and its buttons stay; only the ages move on
      for (const p of pods) {
        const cell = this._podsSection.querySelector(`tr[data-pod="${p.index}"] .jp-RunaiDetails-podStarted`);
        if (cell) {
          cell.textContent = podRow(p, now).started;
        }
      }
    } else {
      this._podsKey = podsKey;
      this._podsSection = this._renderPods(w, now);
    }
    const podsSection = this._podsSection;

    const events = latestEvents(w.events, 30);
    const eventsSection = h(
      'section',
      { class: 'jp-RunaiDetails-section', 'aria-label': 'Events' },
      h('h3', null, 'Latest events'),
      events.length
        ? h(
            'table',
            { class: 'jp-RunaiTable jp-RunaiDetails-events' },
            h('thead', null, h('tr', null, ['Age', 'Type', 'Pod', 'Message'].map(c => h('th', null, c)))),
            h(
              'tbody',
              null,
              events.map(e =>
                h(
                  'tr',
                  { dataset: { type: e.type } },
                  h('td', { class: 'jp-RunaiDetails-age', title: new Date(e.at).toLocaleString() }, ageLabel(e.at, now)),
                  h('td', null, h('span', { class: `jp-RunaiEvent jp-RunaiEvent--${eventClass(e.type)}` }, e.type)),
                  h('td', { class: 'jp-mod-nowrap' }, e.pod ?? ''),
                  h('td', { class: 'jp-RunaiDetails-eventMessage' }, e.message)
                )
              )
            )
          )
        : h('div', { class: 'jp-RunaiDetails-empty' }, 'No events.')
    );

    // the pods table (with its Logs buttons) stays where it is while its pods do not change
    patchChildren(this._side, [podsSection, eventsSection]);
    patchChildren(this._columns, [spec, this._side]);
    patchChildren(this._body, pending ? [header, pending, this._columns] : [header, this._columns]);
  }

  private _renderPods(w: IWorkloadWithEvents, now: number): HTMLElement {
    const pods = w.status.pods;
    const anyMessage = pods.some(p => !!p.message);
    return h(
      'section',
      { class: 'jp-RunaiDetails-section', 'aria-label': 'Pods' },
      h('h3', null, `Pods (${pods.length})`),
      pods.length
        ? h(
            'div',
            { class: 'jp-RunaiTable-scroll' },
            h(
            'table',
            { class: 'jp-RunaiTable jp-RunaiDetails-pods' },
            h('thead', null, h('tr', null, ['Pod', 'Phase', 'Node', 'Devices', 'Share', 'Started', ...(anyMessage ? ['Message'] : [])].map(c => h('th', null, c)))),
            h(
              'tbody',
              null,
              pods.map(p => {
                const r = podRow(p, now);
                return h(
                  'tr',
                  { dataset: { pod: String(p.index) } },
                  h(
                    'td',
                    { class: 'jp-RunaiDetails-podName jp-mod-nowrap' },
                    r.name,
                    p.started_at
                      ? h(
                          'button',
                          { class: 'jp-RunaiWorkload-action jp-RunaiDetails-podLogs', title: `Follow the log of ${r.name}`, 'aria-label': `Logs of ${r.name}`, dataset: { focusKey: `logs-${p.index}` }, onclick: () => this.commands.openLogs(w.spec.project, w.spec.name, p.index) },
                          'Logs'
                        )
                      : null
                  ),
                  h('td', null, h('span', { class: `jp-RunaiChip jp-RunaiChip--${phaseClass(r.phase)}` }, r.phase)),
                  h('td', { class: 'jp-RunaiDetails-node' }, r.node),
                  h('td', { class: 'jp-RunaiDetails-devices jp-mod-nowrap' }, r.devices),
                  h('td', { class: 'jp-RunaiDetails-share jp-mod-nowrap' }, r.share),
                  h('td', { class: 'jp-mod-nowrap jp-RunaiDetails-podStarted' }, r.started),
                  anyMessage ? h('td', { class: 'jp-RunaiDetails-podMessage' }, r.message) : null
                );
              })
            )
          )
          )
        : h('div', { class: 'jp-RunaiDetails-empty' }, 'No pod placed yet.')
    );
  }

  private _actionButton(action: keyof typeof DETAILS_ACTIONS): HTMLButtonElement {
    let button = this._buttons.get(action);
    if (!button) {
      const text = DETAILS_ACTIONS[action];
      button = h(
        'button',
        {
          class: `jp-mod-styled jp-RunaiDetails-action jp-RunaiDetails-${action}`,
          title: text.title,
          dataset: { focusKey: action },
          onclick: () => {
            const w = this._workload;
            if (!w) {
              return;
            }
            // copy and clone work for a deleted workload too (its last view is kept)
            if (action === 'copy') {
              void copySubmitLine(w.spec);
            } else if (action === 'clone') {
              this.commands.clone(w.spec);
            } else if (this._gone) {
              return;
            } else if (action === 'logs') {
              this.commands.openLogs(w.spec.project, w.spec.name);
            } else {
              void runAction(this.model, action, w);
            }
          }
        },
        text.label
      );
      this._buttons.set(action, button);
    }
    return button;
  }

  private _body: HTMLElement;
  private _titleRow = h('div', { class: 'jp-RunaiDetails-titleRow' });
  private _actions = h('div', { class: 'jp-RunaiDetails-actions' });
  private _header = h('header', { class: 'jp-RunaiDetails-header' }, this._titleRow, this._actions);
  private _goneNote = h('div', { class: 'jp-RunaiSidebar-message', dataset: { kind: 'info' } }, 'This workload was deleted; what it was is kept below.');
  private _open = h('a', { class: 'jp-mod-styled jp-RunaiDetails-action jp-RunaiDetails-open', target: '_blank', rel: 'noopener', dataset: { focusKey: 'open' } }, 'Open ↗');
  private _buttons = new Map<string, HTMLButtonElement>();
  private _podsSection: HTMLElement | null = null;
  private _side = h('div');
  private _columns = h('div', { class: 'jp-RunaiDetails-columns' });
  private _podsKey = '';
  private _workload: IWorkloadWithEvents | null = null;
  private _gone = false;
  private _error: string | null = null;
  private _fetching = false;
  private _again = false;
  private _last = 0;
  private _timer = 0;
  private _unregister: () => void;
}
