/** A workload's logs in the main area, followed live, one pod at a time. */

import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { RunaiApiError, streamText } from './api';
import { h, replaceChildren } from './dom';
import { phaseClass } from './logic/format';
import { shouldRestartLogs } from './logic/logs';
import { RunaiModel } from './model';

const MAX_CHARS = 2_000_000; // keep the tab light: older output is dropped past this

export class LogsView extends Widget {
  constructor(
    private readonly model: RunaiModel,
    readonly project: string,
    readonly workload: string,
    pod = 0
  ) {
    super();
    this.addClass('jp-RunaiLogs');
    this.id = `jupyter-runai-logs-${project}-${workload}`;
    this.title.label = `Logs: ${workload}`;
    this.title.caption = `Logs of ${project}/${workload}`;
    this.title.closable = true;
    this._pod = pod;
    this._podSelect = h('select', {
      class: 'jp-mod-styled jp-RunaiLogs-pod',
      'aria-label': 'Pod',
      onchange: () => {
        this._pod = Number(this._podSelect.value);
        this._podChanged.emit(this._pod);
        this._start();
      }
    });
    this._follow = h('input', {
      type: 'checkbox',
      checked: true,
      onchange: () => this._start()
    });
    this._tail = h(
      'select',
      { class: 'jp-mod-styled jp-RunaiLogs-tail', 'aria-label': 'Lines', onchange: () => this._start() },
      h('option', { value: '' }, 'all lines'),
      h('option', { value: '1000' }, 'last 1,000 lines'),
      h('option', { value: '100' }, 'last 100 lines'),
      h('option', { value: '20' }, 'last 20 lines')
    );
    this._status = h('span', { class: 'jp-RunaiLogs-status', role: 'status' });
    this._chip = h('span', { class: 'jp-RunaiChip' });
    this._output = h('pre', { class: 'jp-RunaiLogs-output', tabindex: 0, 'aria-label': 'Log output', 'aria-live': 'off' });
    this.node.appendChild(
      h(
        'div',
        { class: 'jp-RunaiLogs-toolbar' },
        h('span', { class: 'jp-RunaiLogs-name' }, `${project}/${workload}`),
        this._chip,
        h('label', { class: 'jp-RunaiLogs-label' }, 'Pod ', this._podSelect),
        h('label', { class: 'jp-RunaiLogs-label' }, 'Show ', this._tail),
        h('label', { class: 'jp-RunaiLogs-label' }, this._follow, ' Follow'),
        this._status
      )
    );
    this.node.appendChild(this._output);
    model.changed.connect(this._update, this);
    // start the stream first: _update() restarts only a stream that is not running, so the
    // tab opens exactly one stream
    this._start();
    this._update();
  }

  dispose(): void {
    this._abort?.abort();
    super.dispose();
  }

  /** Follow another pod (from the details view's pod table). */
  showPod(pod: number): void {
    if (pod !== this._pod) {
      this._pod = pod;
      this._podChanged.emit(pod);
      this._podSelect.dataset.names = '';
      this._update();
      this._start();
    }
  }

  /** The pod whose log it shows. */
  get pod(): number {
    return this._pod;
  }

  /** Another pod was chosen (the layout restorer keeps the choice). */
  get podChanged(): ISignal<this, number> {
    return this._podChanged;
  }

  get text(): string {
    return this._output.textContent ?? '';
  }

  private _update(): void {
    const w = this.model.workload(this.project, this.workload);
    if (!w) {
      this._chip.textContent = this.model.loaded ? 'deleted' : '';
      return;
    }
    this._chip.textContent = w.status.phase;
    this._chip.className = `jp-RunaiChip jp-RunaiChip--${phaseClass(w.status.phase)}`;
    const pods = w.status.pods.map(p => p.index);
    if (!pods.includes(this._pod)) {
      pods.push(this._pod);
    }
    const names = pods.map(i => `${i}`).join(',');
    if (this._podSelect.dataset.names !== names) {
      this._podSelect.dataset.names = names;
      replaceChildren(
        this._podSelect,
        pods.map(i => h('option', { value: i }, w.status.pods.find(p => p.index === i)?.name ?? `${this.workload}-${i}`))
      );
      this._podSelect.value = String(this._pod);
    }
    // a finished stream restarts when the pod runs again (resume, restart after failure)
    if (shouldRestartLogs(this._streaming, this._follow.checked, w.status.pods.find(p => p.index === this._pod), this._endedStart)) {
      this._start();
    }
  }

  private _start(): void {
    this._abort?.abort();
    const abort = (this._abort = new AbortController());
    this._output.textContent = '';
    const follow = this._follow.checked;
    const pod = this._pod;
    this._streaming = true;
    this._status.textContent = follow ? 'following…' : 'loading…';
    const tail = this._tail.value ? `&tail=${this._tail.value}` : '';
    const path = `workloads/${encodeURIComponent(this.project)}/${encodeURIComponent(this.workload)}/logs?pod=${pod}&follow=${follow}${tail}`;
    let pending = '';
    let scheduled = false;
    const flush = () => {
      scheduled = false;
      const atBottom = this._output.scrollHeight - this._output.scrollTop - this._output.clientHeight < 24;
      this._output.appendChild(document.createTextNode(pending));
      pending = '';
      const text = this._output.textContent ?? '';
      if (text.length > MAX_CHARS) {
        this._output.textContent = text.slice(text.length - MAX_CHARS);
      }
      if (atBottom) {
        this._output.scrollTop = this._output.scrollHeight;
      }
    };
    streamText(
      path,
      chunk => {
        pending += chunk;
        if (!scheduled) {
          scheduled = true;
          requestAnimationFrame(flush);
        }
      },
      abort.signal
    )
      .then(() => {
        if (abort.signal.aborted) {
          return;
        }
        flush();
        const w = this.model.workload(this.project, this.workload);
        this._endedStart = w?.status.pods.find(p => p.index === pod)?.started_at ?? null;
        this._status.textContent = follow ? 'the pod ended: end of log' : 'loaded';
        if (!(this._output.textContent ?? '').length) {
          this._output.textContent = '';
          this._status.textContent = follow ? 'the pod ended without output' : 'no output yet';
        }
        this._streaming = false;
      })
      .catch(error => {
        if (abort.signal.aborted) {
          return;
        }
        this._streaming = false;
        this._status.textContent = error instanceof RunaiApiError ? error.message : `the log stream broke: ${error}`;
      });
  }

  private _pod: number;
  private _podChanged = new Signal<this, number>(this);
  private _podSelect: HTMLSelectElement;
  private _follow: HTMLInputElement;
  private _tail: HTMLSelectElement;
  private _status: HTMLElement;
  private _chip: HTMLElement;
  private _output: HTMLElement;
  private _abort: AbortController | null = null;
  private _streaming = false;
  private _endedStart: string | null = null;
}
