/** A workload's logs in the main area, followed live, one pod at a time. */

import { IStateDB } from '@jupyterlab/statedb';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { RunaiApiError, streamText } from './api';
import { h, replaceChildren } from './dom';
import { phaseClass } from './logic/format';
import { shouldRestartLogs } from './logic/logs';
import { formatLogTime, ITimedLine, localOffsetMinutes, TimedLog } from './logic/logtimes';
import { lineMatches } from './logic/terminal';
import { RunaiModel } from './model';

/** Keep the tab light: past this many lines the oldest are dropped (and a notice says so). */
export const MAX_LINES = 20_000;
/** ... and past this many characters in all (long lines). */
export const MAX_CHARS = 4_000_000;

/** Where the log view keeps its choices (the Timestamps toggle) in the state database. */
export const LOGS_STATE = 'jupyter-runai:logs';

/** One rendered line as an element: styled spans, or plain text where it has no style; its time
 * (when the server recorded one) in `data-time`, shown by CSS in a column when Timestamps is on
 * (so it is neither searched nor copied with the text). */
function lineElement(line: ITimedLine, el: HTMLElement = h('div', { class: 'jp-RunaiLogs-line' })): HTMLElement {
  if (line.time !== null) {
    el.dataset.time = formatLogTime(line.time, localOffsetMinutes(line.time));
  }
  el.replaceChildren(
    ...line.segments.map(seg => {
      if (!seg.classes.length && !seg.css) {
        return document.createTextNode(seg.text);
      }
      const span = h('span', { class: seg.classes.join(' ') }, seg.text);
      if (seg.css) {
        span.setAttribute('style', seg.css);
      }
      return span;
    })
  );
  return el;
}

export class LogsView extends Widget {
  constructor(
    private readonly model: RunaiModel,
    readonly project: string,
    readonly workload: string,
    pod = 0,
    private readonly state: IStateDB | null = null
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
    this._timestamps = h('input', {
      type: 'checkbox',
      class: 'jp-RunaiLogs-timestamps',
      onchange: () => {
        this._showTimes();
        void this.state?.save(LOGS_STATE, { timestamps: this._timestamps.checked });
      }
    });
    this._tail = h(
      'select',
      { class: 'jp-mod-styled jp-RunaiLogs-tail', 'aria-label': 'Lines', onchange: () => this._start() },
      h('option', { value: '' }, 'all lines'),
      h('option', { value: '1000' }, 'last 1,000 lines'),
      h('option', { value: '100' }, 'last 100 lines'),
      h('option', { value: '20' }, 'last 20 lines')
    );
    this._search = h('input', {
      type: 'search',
      class: 'jp-mod-styled jp-RunaiLogs-search',
      placeholder: 'Search',
      'aria-label': 'Search the log',
      oninput: () => this._searchAll(),
      onkeydown: (event: KeyboardEvent) => {
        if (event.key === 'Enter') {
          event.preventDefault();
          this._nextMatch(event.shiftKey ? -1 : 1);
        }
      }
    });
    this._matchCount = h('span', { class: 'jp-RunaiLogs-matches', 'aria-live': 'polite' });
    this._download = h(
      'button',
      {
        class: 'jp-mod-styled jp-RunaiLogs-download',
        title:
          "Download the pod's whole log as it wrote it (colour codes and carriage returns included; " +
          'with Timestamps on, each line after the time it arrived)',
        onclick: () => void this._downloadLog()
      },
      'Download'
    );
    this._trimmed = h('div', { class: 'jp-RunaiLogs-trimmed', role: 'note', hidden: true });
    this._status = h('span', { class: 'jp-RunaiLogs-status', role: 'status' });
    this._chip = h('span', { class: 'jp-RunaiChip' });
    this._output = h('div', { class: 'jp-RunaiLogs-output', role: 'log', tabindex: 0, 'aria-label': 'Log output', 'aria-live': 'off' });
    this.node.appendChild(
      h(
        'div',
        { class: 'jp-RunaiLogs-toolbar' },
        h('span', { class: 'jp-RunaiLogs-name' }, `${project}/${workload}`),
        this._chip,
        h('label', { class: 'jp-RunaiLogs-label' }, 'Pod ', this._podSelect),
        h('label', { class: 'jp-RunaiLogs-label' }, 'Show ', this._tail),
        h('label', { class: 'jp-RunaiLogs-label' }, this._follow, ' Follow'),
        h(
          'label',
          {
            class: 'jp-RunaiLogs-label',
            title:
              "Show when each line arrived, in this browser's time zone: the time its first character was " +
              'written (a progress bar: when it started). Download then has the times too, in UTC.'
          },
          this._timestamps,
          ' Timestamps'
        ),
        this._search,
        this._matchCount,
        this._download,
        this._status
      )
    );
    this.node.appendChild(this._trimmed);
    this.node.appendChild(this._output);
    void this.state?.fetch(LOGS_STATE).then(saved => {
      const timestamps = (saved as { timestamps?: unknown } | undefined)?.timestamps;
      if (typeof timestamps === 'boolean' && !this.isDisposed) {
        this._timestamps.checked = timestamps;
        this._showTimes();
      }
    });
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

  /** The times are shown in a column (the lines always carry them). */
  private _showTimes(): void {
    this._output.classList.toggle('jp-mod-timestamps', this._timestamps.checked);
  }

  /** The log as shown: one line of text per line, styles (and times) left out. */
  get text(): string {
    return Array.from(this._output.children, el => el.textContent ?? '').join('\n');
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
    const renderer = new TimedLog();
    this._output.replaceChildren();
    let current = lineElement({ segments: [], time: null });
    this._output.appendChild(current);
    this._trimmedLines = 0;
    this._showTrimmed();
    this._currentMatch = null;
    this._searchAll();
    const follow = this._follow.checked;
    const pod = this._pod;
    this._streaming = true;
    this._status.textContent = follow ? 'following…' : 'loading…';
    const tail = this._tail.value ? `&tail=${this._tail.value}` : '';
    // always with the times: the toggle shows or hides them without reading the log again
    const path = `workloads/${encodeURIComponent(this.project)}/${encodeURIComponent(this.workload)}/logs?pod=${pod}&follow=${follow}${tail}&timestamps=true`;
    let pending = '';
    let scheduled = false;
    let seen = false;
    let chars = 0; // characters in the ended lines shown
    const flush = () => {
      scheduled = false;
      if (!pending || abort.signal.aborted) {
        return;
      }
      seen = true;
      const out = this._output;
      const atBottom = out.scrollHeight - out.scrollTop - out.clientHeight < 24;
      const update = renderer.feed(pending);
      pending = '';
      const query = this._search.value;
      let fresh: HTMLElement[] = [];
      if (update.lines.length) {
        // the open line is ended now: it takes the first ended line, the rest follow it
        fresh = update.lines.map((line, i) => (i === 0 ? lineElement(line, current) : lineElement(line)));
        current = lineElement(update.current);
        const tailNodes = [...fresh.slice(1), current];
        out.append(...tailNodes);
        for (const el of fresh) {
          el.classList.toggle('jp-mod-match', lineMatches(el.textContent ?? '', query));
        }
      } else {
        lineElement(update.current, current);
      }
      current.classList.toggle('jp-mod-match', lineMatches(current.textContent ?? '', query));
      for (const el of fresh) {
        chars += (el.textContent ?? '').length;
      }
      // past MAX_LINES ended lines (the open line comes on top) or MAX_CHARS, the oldest go
      let dropped = 0;
      while (out.children.length - 1 > 0 && (out.children.length - 1 > MAX_LINES || chars > MAX_CHARS)) {
        const first = out.firstElementChild as HTMLElement;
        chars -= (first.textContent ?? '').length;
        first.remove();
        dropped++;
      }
      if (dropped) {
        this._trimmedLines += dropped;
        this._showTrimmed();
      }
      if (query) {
        this._countMatches();
      }
      if (atBottom) {
        out.scrollTop = out.scrollHeight;
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
        if (!seen) {
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

  private _showTrimmed(): void {
    const n = this._trimmedLines;
    this._trimmed.hidden = n === 0;
    this._trimmed.textContent = n
      ? `${n.toLocaleString('en-US')} older line${n === 1 ? ' is' : 's are'} not shown here (this tab keeps the last ${MAX_LINES.toLocaleString('en-US')} lines, up to ${(MAX_CHARS / 1e6).toLocaleString('en-US')} million characters); Download has the whole log.`
      : '';
  }

  /** Mark every line that holds the search text. */
  private _searchAll(): void {
    const query = this._search.value;
    for (const el of Array.from(this._output.children)) {
      el.classList.toggle('jp-mod-match', lineMatches(el.textContent ?? '', query));
    }
    if (this._currentMatch && !this._currentMatch.classList.contains('jp-mod-match')) {
      this._currentMatch.classList.remove('jp-mod-current');
      this._currentMatch = null;
    }
    this._countMatches();
  }

  private _countMatches(): void {
    if (!this._search.value) {
      this._matchCount.textContent = '';
      return;
    }
    const matches = this._output.querySelectorAll('.jp-mod-match');
    const at = this._currentMatch ? Array.prototype.indexOf.call(matches, this._currentMatch) : -1;
    const n = matches.length;
    this._matchCount.textContent = n === 0 ? 'no match' : at >= 0 ? `${at + 1} of ${n}` : `${n} line${n === 1 ? '' : 's'}`;
  }

  /** Go to the next (or previous) line that matches, wrapping around. */
  private _nextMatch(step: 1 | -1): void {
    const matches = Array.from(this._output.querySelectorAll<HTMLElement>('.jp-mod-match'));
    if (!matches.length) {
      this._countMatches();
      return;
    }
    const at = this._currentMatch ? matches.indexOf(this._currentMatch) : -1;
    const next = matches[at < 0 ? (step > 0 ? 0 : matches.length - 1) : (at + step + matches.length) % matches.length];
    this._currentMatch?.classList.remove('jp-mod-current');
    next.classList.add('jp-mod-current');
    this._currentMatch = next;
    next.scrollIntoView({ block: 'center' });
    this._countMatches();
  }

  /** Save the pod's whole log (read again from the server, not what this tab kept) as a file;
   * with Timestamps on, each line after its time (RFC 3339, UTC, as `runai logs --timestamps`). */
  private async _downloadLog(): Promise<void> {
    const pod = this._pod;
    const times = this._timestamps.checked;
    const path = `workloads/${encodeURIComponent(this.project)}/${encodeURIComponent(this.workload)}/logs?pod=${pod}&follow=false&timestamps=${times}`;
    const parts: string[] = [];
    this._download.disabled = true;
    try {
      await streamText(path, chunk => parts.push(chunk), new AbortController().signal);
      const url = URL.createObjectURL(new Blob(parts, { type: 'text/plain;charset=utf-8' }));
      const a = h('a', { href: url, download: `${this.project}-${this.workload}-${pod}.log`, hidden: true });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      this._status.textContent = `the download failed: ${error instanceof RunaiApiError ? error.message : error}`;
    } finally {
      this._download.disabled = false;
    }
  }

  private _pod: number;
  private _podChanged = new Signal<this, number>(this);
  private _podSelect: HTMLSelectElement;
  private _follow: HTMLInputElement;
  private _timestamps: HTMLInputElement;
  private _tail: HTMLSelectElement;
  private _status: HTMLElement;
  private _chip: HTMLElement;
  private _output: HTMLElement;
  private _search: HTMLInputElement;
  private _matchCount: HTMLElement;
  private _download: HTMLButtonElement;
  private _trimmed: HTMLElement;
  private _trimmedLines = 0;
  private _currentMatch: HTMLElement | null = null;
  private _abort: AbortController | null = null;
  private _streaming = false;
  private _endedStart: string | null = null;
}
