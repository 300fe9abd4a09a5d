/** The left sidebar panel "GPU workloads": project + quota, filters, the workload list and its actions. */

import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { h, patchChildren, replaceChildren } from './dom';
import { runaiIcon } from './icons';
import { ageOf, gpuRequestLabel, gpuRequestTitle, KIND_SHORT, phaseClass } from './logic/format';
import { planList, rowView } from './logic/rows';
import { quotaBar } from './logic/quota';
import { runBulk } from './actions';
import { bulkTargets, DEFAULT_SORT, durationLabel, finishedTargets, ISort, nextSort, prunedSelection, restoredLayout, SidebarView, sortTable, submittedAgeLabel, TABLE_COLUMNS } from './logic/table';
import { IWorkload } from './logic/types';
import { filterWorkloads, IFilter, restoredFilter, sortWorkloads, STATUS_FILTERS, statusCounts, StatusFilter, workloadKey } from './logic/workloads';
import { IAccessMe, RunaiModel } from './model';
import { WorkloadRow } from './rows';

/** What the sidebar keeps in the state database: the project, the filters, the view and its sort. */
export interface ISidebarState extends IFilter {
  view: SidebarView;
  sort: ISort;
}

export interface ISidebarCommands {
  newWorkload: () => void;
  openLogs: (project: string, name: string) => void;
  openCluster: () => void;
  openDetails: (project: string, name: string) => void;
  openResources: (project: string | null) => void;
  openAdmin: () => void;
}

/** the project select's value for "All projects" (not a valid project name) */
const ALL = '*';

export class RunaiSidebar extends Widget {
  constructor(
    readonly model: RunaiModel,
    private readonly commands: ISidebarCommands
  ) {
    super();
    this.id = 'jupyter-runai-sidebar';
    this.addClass('jp-RunaiSidebar');
    this.title.icon = runaiIcon;
    this.title.caption = 'GPU workloads';
    this._unregister = model.addViewer(() => this.isVisible);
    model.changed.connect(this._render, this);
    model.settingsChanged.connect(this._settingsChanged, this);

    this._projectSelect = h('select', {
      class: 'jp-mod-styled jp-RunaiSidebar-projectSelect',
      'aria-label': 'Project',
      onchange: () => {
        this._filter.project = this._projectSelect.value;
        this._emitState();
        this._render();
      }
    });
    this._statusSelect = h('select', {
      class: 'jp-mod-styled jp-RunaiSidebar-statusFilter',
      'aria-label': 'Filter by status',
      onchange: () => {
        this._filter.status = this._statusSelect.value as StatusFilter;
        this._emitState();
        this._render();
      }
    });
    this._kindSelect = h('select', {
      class: 'jp-mod-styled jp-RunaiSidebar-kindFilter',
      'aria-label': 'Filter by kind',
      onchange: () => {
        this._filter.kind = this._kindSelect.value;
        this._emitState();
        this._render();
      }
    });
    this._search = h('input', {
      class: 'jp-mod-styled jp-RunaiSidebar-search',
      type: 'search',
      placeholder: 'Filter by name',
      'aria-label': 'Filter by name',
      oninput: () => {
        this._filter.text = this._search.value;
        this._emitState();
        this._render();
      }
    });
    this._live = h('span', { class: 'jp-RunaiSidebar-live', role: 'status' });
    this._quota = h('div', { class: 'jp-RunaiQuota' });
    this._list = h('ul', { class: 'jp-RunaiSidebar-list', 'aria-label': 'Workloads' });
    this._message = h('div', { class: 'jp-RunaiSidebar-message', role: 'status' });
    const viewButton = (view: SidebarView, label: string, title: string) =>
      h(
        'button',
        {
          class: `jp-RunaiSidebar-viewButton jp-RunaiSidebar-view-${view}`,
          title,
          'aria-pressed': 'false',
          onclick: () => {
            if (this._view !== view) {
              this._view = view;
              this._viewChosen = true;
              this._emitState();
              this._render();
            }
          }
        },
        label
      );
    this._viewButtons = [viewButton('cards', 'Cards', 'One card per workload, with its actions'), viewButton('table', 'Table', 'A compact table, sortable by each column')];
    this._selectAll = h('input', {
      type: 'checkbox',
      class: 'jp-RunaiSidebarTable-selectAll',
      'aria-label': 'Select every workload shown',
      onchange: () => {
        this._selected = this._selectAll.checked ? new Set(this._shown.map(workloadKey)) : new Set();
        this._render();
      }
    });
    const bulkButton = (cls: string, label: string, onclick: () => void) =>
      h('button', { class: `jp-mod-styled jp-RunaiBulk-action jp-RunaiBulk-${cls}`, onclick }, label);
    this._bulkCount = h('span', { class: 'jp-RunaiBulk-count', role: 'status' });
    this._bulkStop = bulkButton('stop', 'Stop', () => void this._bulk('stop'));
    this._bulkDelete = bulkButton('delete', 'Delete', () => void this._bulk('delete'));
    this._clearFinished = bulkButton('clear', 'Clear finished', () => void this._clear());
    this._bulkBar = h(
      'div',
      { class: 'jp-RunaiBulk', role: 'toolbar', 'aria-label': 'Selected workloads', hidden: true },
      this._bulkCount,
      this._bulkStop,
      this._bulkDelete,
      this._clearFinished
    );
    this._tableHead = h('tr');
    this._tableBody = h('tbody');
    this._table = h(
      'div',
      { class: 'jp-RunaiSidebar-tableWrap', hidden: true },
      h('table', { class: 'jp-RunaiSidebarTable', 'aria-label': 'Workloads' }, h('thead', null, this._tableHead), this._tableBody)
    );

    this._adminButton = h(
      'button',
      {
        class: 'jp-mod-styled jp-RunaiSidebar-adminButton',
        title: 'Administer departments, projects, node pools, policies and roles; read the audit log',
        hidden: true,
        onclick: () => this.commands.openAdmin()
      },
      'Admin'
    );
    const toolbar = h(
      'div',
      { class: 'jp-RunaiSidebar-toolbar' },
      h(
        'button',
        {
          class: 'jp-mod-styled jp-mod-accept jp-RunaiSidebar-new',
          title: 'Submit a new workload',
          onclick: () => this.commands.newWorkload()
        },
        '+ New workload'
      ),
      h(
        'button',
        {
          class: 'jp-mod-styled jp-RunaiSidebar-clusterButton',
          title: 'Nodes and GPU devices, with what each holds',
          onclick: () => this.commands.openCluster()
        },
        'Cluster'
      ),
      h(
        'button',
        {
          class: 'jp-mod-styled jp-RunaiSidebar-resourcesButton',
          title: 'Data sources and credentials of the project',
          onclick: () => this.commands.openResources(this.project)
        },
        'Data & secrets'
      ),
      this._adminButton
    );
    // admins only (the server refuses anyone else anyway); the button shows once the server says so,
    // and comes or goes when a role is granted or revoked while the page is open
    const showAccess = (me: IAccessMe) => {
      this._adminButton.hidden = !me.admin;
      toolbar.classList.toggle('jp-mod-admin', me.admin);
    };
    this.model.accessMe().then(showAccess).catch(() => undefined);
    this.model.accessChanged.connect((_, me) => showAccess(me), this);
    this.node.appendChild(
      h(
        'div',
        { class: 'jp-RunaiSidebar-inner' },
        h('header', { class: 'jp-RunaiSidebar-header' }, h('h2', { class: 'jp-RunaiSidebar-title' }, 'GPU workloads'), this._live),
        toolbar,
        h(
          'section',
          { class: 'jp-RunaiSidebar-project', 'aria-label': 'Project and quota' },
          h('label', { class: 'jp-RunaiSidebar-projectLabel' }, h('span', null, 'Project'), this._projectSelect),
          this._quota
        ),
        h(
          'section',
          { class: 'jp-RunaiSidebar-filters', 'aria-label': 'Filters' },
          this._statusSelect,
          this._kindSelect,
          h(
            'div',
            { class: 'jp-RunaiSidebar-searchRow' },
            this._search,
            h('div', { class: 'jp-RunaiSidebar-viewSwitch', role: 'group', 'aria-label': 'View' }, this._viewButtons)
          )
        ),
        this._message,
        this._bulkBar,
        this._list,
        this._table
      )
    );
    this._render();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._unregister();
    window.clearInterval(this._tick);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    this.model.wake();
    window.clearInterval(this._tick);
    this._tick = window.setInterval(() => this._tickAges(), this.model.settings.ageTickMs);
    this._render();
  }

  protected onAfterHide(msg: Message): void {
    window.clearInterval(this._tick);
  }

  /** The project, filters, view or sort changed by the user (for the state database). */
  get filterChanged(): ISignal<this, ISidebarState> {
    return this._filterChanged;
  }

  /** Put back a saved project, filters, view and sort (after a reload); what does not fit is ignored. */
  restoreFilter(saved: Partial<ISidebarState> | null | undefined): void {
    const next = restoredFilter(this._filter, saved);
    this._filter = next;
    this._search.value = next.text;
    const layout = restoredLayout(saved, this.model.settings.defaultView);
    this._view = layout.view;
    this._viewChosen = !!saved && (saved.view === 'cards' || saved.view === 'table');
    this._sort = layout.sort;
    this._render();
  }

  /** New settings: the age tick's interval; the default view while the user has chosen none. */
  private _settingsChanged(): void {
    if (!this._viewChosen) {
      this._view = this.model.settings.defaultView;
    }
    if (this.isVisible) {
      window.clearInterval(this._tick);
      this._tick = window.setInterval(() => this._tickAges(), this.model.settings.ageTickMs);
    }
    this._render();
  }

  /** Cards or the table. */
  get view(): SidebarView {
    return this._view;
  }

  private _emitState(): void {
    this._filterChanged.emit({ ...this._filter, view: this._view, sort: { ...this._sort } });
  }

  /** The chosen project (null: all projects). */
  get project(): string | null {
    return this._filter.project === ALL ? null : this._filter.project;
  }

  /** Shown from the command palette or a shortcut: the focus goes into the panel (to its first
   * control), unless it is in the panel already (a revealed row keeps it). */
  protected onActivateRequest(msg: Message): void {
    this.focusPanel();
  }

  /** The focus into the panel (its first control), unless it is there already. */
  focusPanel(): void {
    if (!this.node.contains(document.activeElement)) {
      this.node.querySelector<HTMLElement>('button.jp-RunaiSidebar-new')?.focus();
    }
  }

  /** Scroll to a workload, flash it and give it the focus (after a submit). */
  reveal(project: string, name: string): void {
    this._filter.project = project;
    this._filter.status = 'all';
    this._revealKey = `${project}/${name}`;
    this._render();
  }

  private _render(): void {
    const model = this.model;
    this._live.textContent = model.streamState === 'live' ? '● live' : model.streamState === 'connecting' ? '○ connecting' : '○ polling';
    this._live.title =
      model.streamState === 'live' ? 'Updates arrive as they happen (event stream)' : 'The event stream is down: refreshing every few seconds';
    this._live.dataset.state = model.streamState;

    // project switcher
    const projects = model.projects.map(p => p.name);
    if (this._filter.project === null || (projects.length && this._filter.project !== ALL && !projects.includes(this._filter.project))) {
      this._filter.project = model.info?.form?.defaults.project ?? projects[0] ?? null;
    }
    const selected = this._filter.project;
    const current = selected === ALL ? null : selected;
    const values = [...projects, ALL];
    if (this._projectSelect.options.length !== values.length || values.some((p, i) => this._projectSelect.options[i].value !== p)) {
      replaceChildren(
        this._projectSelect,
        projects.map(p => h('option', { value: p }, p)),
        h('option', { value: ALL }, 'All projects')
      );
    }
    if (selected) {
      this._projectSelect.value = selected;
    }

    // quota bar
    const project = model.projects.find(p => p.name === current);
    if (project) {
      const bar = quotaBar(project, model.info?.gpus ?? 0);
      const marker = (pct: number | null, cls: string, label: string) =>
        pct === null ? null : h('span', { class: `jp-RunaiQuota-marker jp-RunaiQuota-marker--${cls}`, style: { left: `${pct}%` }, title: label });
      replaceChildren(
        this._quota,
        h(
          'div',
          { class: 'jp-RunaiQuota-bar', role: 'img', 'aria-label': `Quota: ${bar.summary}` },
          h('span', { class: 'jp-RunaiQuota-deserved', style: { width: `${bar.deservedPct}%` } }),
          h('span', { class: 'jp-RunaiQuota-allocated', style: { width: `${bar.allocatedPct - bar.overPct}%` } }),
          h('span', { class: 'jp-RunaiQuota-over', style: { left: `${bar.allocatedPct - bar.overPct}%`, width: `${bar.overPct}%` } }),
          marker(bar.fairSharePct, 'fair', `fair share ${bar.fairShare}`),
          marker(bar.limitPct, 'limit', `limit ${bar.limit}`)
        ),
        h(
          'div',
          { class: 'jp-RunaiQuota-legend' },
          h('span', { class: 'jp-RunaiQuota-key jp-RunaiQuota-key--allocated' }, `${num(bar.allocated)} allocated`),
          h('span', { class: 'jp-RunaiQuota-key jp-RunaiQuota-key--deserved' }, `${num(bar.deserved)} deserved`),
          h('span', { class: 'jp-RunaiQuota-key jp-RunaiQuota-key--fair' }, bar.fairShare === null ? 'fair share —' : `${num(bar.fairShare)} fair share`),
          h('span', { class: 'jp-RunaiQuota-key jp-RunaiQuota-key--limit' }, bar.limit === null ? 'no limit' : `${num(bar.limit)} limit`),
          h('span', { class: 'jp-RunaiQuota-scale' }, `of ${num(bar.scale)} GPUs`)
        )
      );
    } else {
      replaceChildren(this._quota);
    }

    // filters
    const inProject = model.workloads.filter(w => !current || w.spec.project === current);
    const counts = statusCounts(inProject);
    if (this._statusSelect.options.length !== STATUS_FILTERS.length) {
      replaceChildren(this._statusSelect, STATUS_FILTERS.map(f => h('option', { value: f.value }, f.label)));
    }
    STATUS_FILTERS.forEach((f, i) => {
      const text = `${f.label} (${counts[f.value]})`;
      const option = this._statusSelect.options[i];
      if (option.textContent !== text) {
        option.textContent = text; // in place: an open drop-down stays open
      }
    });
    this._statusSelect.value = this._filter.status;
    const kinds = model.info?.kinds ?? ['workspace', 'training', 'distributed', 'inference'];
    if (this._kindSelect.options.length !== kinds.length + 1) {
      replaceChildren(this._kindSelect, h('option', { value: 'all' }, 'All kinds'), kinds.map(k => h('option', { value: k }, KIND_SHORT[k] ?? k)));
    }
    if (this._filter.kind !== 'all' && !(kinds as string[]).includes(this._filter.kind)) {
      this._filter.kind = 'all'; // a restored kind this server does not have
    }
    this._kindSelect.value = this._filter.kind;

    // message and list
    const shown = sortWorkloads(filterWorkloads(model.workloads, { ...this._filter, project: current }));
    if (model.error) {
      this._message.textContent = `Cannot reach the scheduler: ${model.error}`;
      this._message.dataset.kind = 'error';
    } else if (!model.loaded) {
      this._message.textContent = 'Loading…';
      this._message.dataset.kind = 'info';
    } else if (!shown.length) {
      this._message.textContent = inProject.length ? 'No workload matches the filters.' : 'No workloads yet. "+ New workload" submits one.';
      this._message.dataset.kind = 'info';
    } else {
      this._message.textContent = '';
      delete this._message.dataset.kind;
    }
    for (const button of this._viewButtons) {
      button.setAttribute('aria-pressed', String(button.classList.contains(`jp-RunaiSidebar-view-${this._view}`)));
    }
    const table = this._view === 'table';
    this._list.hidden = table;
    this._table.hidden = !table;
    this._bulkBar.hidden = !table;
    this._shown = shown;
    this._selected = prunedSelection(this._selected, shown);
    if (table) {
      this._patchList([], false); // the cards go; they come back as they are when chosen again
      this._patchTable(shown, current === null);
    } else {
      this._patchTable([], false);
      this._patchList(shown, current === null);
    }
    if (this._revealKey) {
      const row = (table ? this._tableBody : this._list).querySelector<HTMLElement>(`[data-key="${CSS.escape(this._revealKey)}"]`);
      if (row) {
        row.scrollIntoView({ block: 'nearest' });
        // the focus goes to the new row (its name: Enter opens its details), not to the page body
        row.querySelector<HTMLElement>('button.jp-RunaiWorkload-name, button.jp-RunaiSidebarTable-name')?.focus();
        // rows stay across refreshes now: the flash class goes when its animation ends
        row.classList.remove('jp-mod-flash');
        void row.offsetWidth; // a second reveal flashes again
        row.classList.add('jp-mod-flash');
        for (const done of ['animationend', 'animationcancel']) {
          row.addEventListener(done, () => row.classList.remove('jp-mod-flash'), { once: true });
        }
        this._revealKey = null;
      }
    }
  }

  /** Ages move on without a re-render of the list. */
  private _tickAges(): void {
    const now = Date.now();
    if (this._view === 'table') {
      this._render();
      return;
    }
    for (const el of Array.from(this._list.querySelectorAll<HTMLElement>('.jp-RunaiWorkload'))) {
      const [project, name] = [el.dataset.project ?? '', el.dataset.name ?? ''];
      const w = this.model.workload(project, name);
      const age = el.querySelector('.jp-RunaiWorkload-age');
      if (w && age) {
        age.textContent = ageOf(w, now);
      }
    }
  }

  /**
   * Bring the list up to date in place: rows are keyed by workload, a row whose view did not
   * change is not touched, a changed row patches only its changed parts (its buttons stay the
   * same elements), and only rows out of order move. A press that spans a refresh lands.
   */
  private _patchList(shown: IWorkload[], showProject: boolean): void {
    const now = Date.now();
    const views = shown.map(w => rowView(w, showProject));
    const current = Array.from(this._list.children).map(el => (el as HTMLElement).dataset.key ?? '');
    const plan = planList(current, views.map(v => v.key));
    for (const key of plan.remove) {
      const row = this._rows.get(key);
      row?.node.remove();
      this._rows.delete(key);
    }
    const moving = new Set(plan.move);
    let cursor = this._list.firstElementChild;
    for (let i = 0; i < views.length; i++) {
      const view = views[i];
      let row = this._rows.get(view.key);
      if (!row) {
        row = new WorkloadRow(this.model, this.commands, this._openDetails);
        this._rows.set(view.key, row);
      }
      row.update(view, shown[i], now);
      if (row.node.parentElement !== this._list || moving.has(view.key)) {
        this._list.insertBefore(row.node, cursor); // a new row, or one out of order
      } else {
        cursor = row.node.nextElementSibling; // a row in order stays where it is (rows between move later)
      }
    }
  }

  /**
   * The table, patched in place like the cards: one row per workload, kept across refreshes,
   * a cell's text set only when it changed; the header's buttons sort.
   */
  private _patchTable(shown: IWorkload[], showProject: boolean): void {
    const now = Date.now();
    const columns = TABLE_COLUMNS.filter(c => c.column !== 'project' || showProject);
    const headKey = columns.map(c => c.column).join(',') + `|${this._sort.column}|${this._sort.descending}`;
    if (this._tableHead.dataset.key !== headKey) {
      this._tableHead.dataset.key = headKey;
      if (!this._selectHead) {
        this._selectHead = h('th', { scope: 'col', class: 'jp-RunaiSidebarTable-select' }, this._selectAll);
      }
      patchChildren(this._tableHead, [
        this._selectHead,
        ...columns.map(c => {
          let th = this._headCells.get(c.column);
          if (!th) {
            th = h(
              'th',
              { scope: 'col', class: `jp-RunaiSidebarTable-${c.column}` },
              h('button', { class: 'jp-RunaiSidebarTable-sort', dataset: { column: c.column, focusKey: `sort:${c.column}` }, title: c.title, onclick: () => this._sortBy(c.column) }, c.label)
            );
            this._headCells.set(c.column, th);
          }
          const active = this._sort.column === c.column;
          th.setAttribute('aria-sort', active ? (this._sort.descending ? 'descending' : 'ascending') : 'none');
          th.classList.toggle('jp-mod-sorted', active);
          return th;
        })
      ]);
    }
    const rows = sortTable(shown, this._sort, now).map(w => {
      const key = workloadKey(w);
      let row = this._tableRows.get(key);
      if (!row) {
        const cells: Record<string, HTMLElement> = {};
        const name = h('button', {
          class: 'jp-RunaiSidebarTable-name',
          title: `Details of ${key}: spec, pods, events`,
          dataset: { focusKey: `${key}:table-name` },
          onclick: () => this.commands.openDetails(w.spec.project, w.spec.name)
        }, w.spec.name);
        cells.name = h('td', { class: 'jp-RunaiSidebarTable-name' }, name);
        const box = h('input', {
          type: 'checkbox',
          class: 'jp-RunaiSidebarTable-check',
          'aria-label': `Select ${w.spec.name}`,
          dataset: { focusKey: `${key}:select` },
          onchange: () => {
            if (box.checked) {
              this._selected.add(key);
            } else {
              this._selected.delete(key);
            }
            this._render();
          }
        });
        cells.select = h('td', { class: 'jp-RunaiSidebarTable-select' }, box);
        for (const c of TABLE_COLUMNS.slice(1)) {
          cells[c.column] = h('td', { class: `jp-RunaiSidebarTable-${c.column}` });
        }
        cells.chip = h('span', { class: 'jp-RunaiChip' });
        cells.status.appendChild(cells.chip);
        const tr = h('tr', { class: 'jp-RunaiSidebarTable-row', dataset: { key, name: w.spec.name, project: w.spec.project } });
        row = { tr, cells };
        this._tableRows.set(key, row);
      }
      const { tr, cells } = row;
      set(cells.chip, w.status.phase);
      cells.chip.className = `jp-RunaiChip jp-RunaiChip--${phaseClass(w.status.phase)}`;
      cells.chip.title = w.status.message ?? w.status.phase;
      tr.dataset.phase = w.status.phase;
      set(cells.gpu, gpuRequestLabel(w.spec.resources));
      cells.gpu.title = gpuRequestTitle(w.spec.resources);
      set(cells.kind, KIND_SHORT[w.spec.kind] ?? w.spec.kind);
      set(cells.age, submittedAgeLabel(w, now));
      set(cells.duration, durationLabel(w, now));
      set(cells.project, w.spec.project);
      const box = cells.select.firstElementChild as HTMLInputElement;
      box.checked = this._selected.has(key);
      tr.classList.toggle('jp-mod-selected', box.checked);
      patchChildren(tr, [cells.select, ...columns.map(c => cells[c.column])]);
      return tr;
    });
    const keep = new Set(rows.map(tr => tr.dataset.key));
    for (const key of Array.from(this._tableRows.keys())) {
      if (!keep.has(key)) {
        this._tableRows.delete(key);
      }
    }
    patchChildren(this._tableBody, rows);

    // the selection bar: what each button would act on, in its label
    const picked = this._selected.size;
    this._selectAll.checked = picked > 0 && picked === shown.length;
    this._selectAll.indeterminate = picked > 0 && picked < shown.length;
    set(this._bulkCount, picked ? `${picked} selected` : 'None selected');
    const stop = bulkTargets(shown, this._selected, 'stop').length;
    const remove = bulkTargets(shown, this._selected, 'delete').length;
    const finished = finishedTargets(shown).length;
    set(this._bulkStop, stop ? `Stop ${stop}` : 'Stop');
    set(this._bulkDelete, remove ? `Delete ${remove}` : 'Delete');
    set(this._clearFinished, finished ? `Clear finished (${finished})` : 'Clear finished');
    this._bulkStop.disabled = !stop;
    this._bulkDelete.disabled = !remove;
    this._clearFinished.disabled = !finished;
    this._bulkStop.title = 'Stop the selected pending and running workloads (they stay in the list)';
    this._bulkDelete.title = 'Delete the selected workloads with their logs';
    this._clearFinished.title = 'Delete every finished workload shown (succeeded, failed, stopped), as the filters show them';
  }

  private async _bulk(action: 'stop' | 'delete'): Promise<void> {
    const targets = bulkTargets(this._shown, this._selected, action);
    const done = await runBulk(this.model, action, targets);
    if (done && action === 'delete') {
      this._selected = new Set();
    }
  }

  private async _clear(): Promise<void> {
    const targets = finishedTargets(this._shown);
    const n = targets.length;
    await runBulk(this.model, 'delete', targets, `Clear ${n} finished workload${n === 1 ? '' : 's'}?`);
  }

  private _sortBy(column: ISort['column']): void {
    this._sort = nextSort(this._sort, column);
    this._emitState();
    this._render();
  }

  private _selected = new Set<string>();
  private _shown: IWorkload[] = [];
  private _selectAll: HTMLInputElement;
  private _selectHead: HTMLElement | null = null;
  private _bulkBar: HTMLElement;
  private _bulkCount: HTMLElement;
  private _bulkStop: HTMLButtonElement;
  private _bulkDelete: HTMLButtonElement;
  private _clearFinished: HTMLButtonElement;
  private _view: SidebarView = 'cards';
  /** the user chose the view (now or before a reload): the default-view setting no longer applies */
  private _viewChosen = false;
  private _sort: ISort = { ...DEFAULT_SORT };
  private _viewButtons: HTMLButtonElement[];
  private _table: HTMLElement;
  private _tableHead: HTMLTableRowElement;
  private _tableBody: HTMLTableSectionElement;
  private _headCells = new Map<string, HTMLElement>();
  private _tableRows = new Map<string, { tr: HTMLTableRowElement; cells: Record<string, HTMLElement> }>();
  private _openDetails = new Set<string>();
  private _rows = new Map<string, WorkloadRow>();
  private _filterChanged = new Signal<this, ISidebarState>(this);
  private _filter: IFilter = { project: null, status: 'all', kind: 'all', text: '' };
  private _projectSelect: HTMLSelectElement;
  private _statusSelect: HTMLSelectElement;
  private _kindSelect: HTMLSelectElement;
  private _search: HTMLInputElement;
  private _live: HTMLElement;
  private _quota: HTMLElement;
  private _list: HTMLUListElement;
  private _message: HTMLElement;
  private _adminButton: HTMLButtonElement;
  private _unregister: () => void;
  private _tick = 0;
  private _revealKey: string | null = null;
}

/** Set an element's text only when it differs (no needless DOM change on a refresh). */
function set(el: HTMLElement, text: string): void {
  if (el.textContent !== text) {
    el.textContent = text;
  }
}

function num(value: number): string {
  return String(Number(value.toFixed(2)));
}
