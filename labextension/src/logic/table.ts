/** The sidebar's compact table view: its columns, how each sorts, and the saved choice. Pure. */

import { ageLabel, isFinished, parseMemory } from './format';
import { IResources, IWorkload } from './types';
import { workloadKey } from './workloads';

export type SidebarView = 'cards' | 'table';
export type SortColumn = 'name' | 'kind' | 'gpu' | 'status' | 'age' | 'duration' | 'project';

export interface ISort {
  column: SortColumn;
  descending: boolean;
}

export interface ITableColumn {
  column: SortColumn;
  label: string;
  title: string;
}

export const TABLE_COLUMNS: ITableColumn[] = [
  { column: 'name', label: 'Name', title: 'Sort by name' },
  { column: 'status', label: 'Status', title: 'Sort by status: pending, running, stopping, then finished' },
  { column: 'gpu', label: 'GPU', title: 'Sort by GPUs requested (fraction × devices; a GPU-memory share after no GPU)' },
  { column: 'kind', label: 'Kind', title: 'Sort by kind' },
  { column: 'age', label: 'Age', title: 'Time since it was submitted' },
  { column: 'duration', label: 'Ran', title: 'How long it has run: from its start to its end, or to now while it runs' },
  { column: 'project', label: 'Project', title: 'Sort by project' }
];

/** The default order: the newest first. */
export const DEFAULT_SORT: ISort = { column: 'age', descending: false };

const STATUS_ORDER = ['Pending', 'Running', 'Stopping', 'Deleting', 'Failed', 'Stopped', 'Succeeded'];

/** GPUs requested, as a pair that sorts: (devices' worth of GPU, bytes of GPU memory). */
export function gpuAmount(resources: IResources | null | undefined): [number, number] {
  const r = resources ?? {};
  const devices = r.gpu_devices && r.gpu_devices > 1 ? r.gpu_devices : 1;
  if (r.gpu_memory) {
    return [0, parseMemory(r.gpu_memory) * devices];
  }
  return [(r.gpu ?? 0) * devices, 0];
}

function time(iso: string | null | undefined): number | null {
  if (!iso) {
    return null;
  }
  const t = Date.parse(iso);
  return isNaN(t) ? null : t;
}

/** Milliseconds it has run (start to end, or to now), or null if it never started. */
export function durationMs(w: IWorkload, now: number): number | null {
  const start = time(w.status.started_at);
  if (start === null) {
    return null;
  }
  const end = time(w.status.finished_at) ?? now;
  return Math.max(0, end - start);
}

/** "5m" it ran, or "—" when it never started. */
export function durationLabel(w: IWorkload, now: number): string {
  const ms = durationMs(w, now);
  return ms === null ? '—' : ageLabel(new Date(now - ms).toISOString(), now);
}

/** Time since it was submitted ("3m"). */
export function submittedAgeLabel(w: IWorkload, now: number): string {
  return ageLabel(w.status.submitted_at, now) || '—';
}

function compareBy(column: SortColumn, now: number): (a: IWorkload, b: IWorkload) => number {
  const text = (f: (w: IWorkload) => string) => (a: IWorkload, b: IWorkload) => f(a).localeCompare(f(b), 'en', { numeric: true });
  const num = (f: (w: IWorkload) => number) => (a: IWorkload, b: IWorkload) => f(a) - f(b);
  switch (column) {
    case 'name':
      return text(w => w.spec.name);
    case 'kind':
      return text(w => w.spec.kind);
    case 'project':
      return text(w => w.spec.project);
    case 'status':
      return num(w => {
        const i = STATUS_ORDER.indexOf(w.status.phase);
        return i < 0 ? STATUS_ORDER.length : i;
      });
    case 'gpu':
      return (a, b) => {
        const [x, y] = [gpuAmount(a.spec.resources), gpuAmount(b.spec.resources)];
        return x[0] - y[0] || x[1] - y[1];
      };
    case 'age':
      // the youngest first: the latest submission first
      return num(w => -(time(w.status.submitted_at) ?? -Infinity));
    case 'duration':
      return num(w => durationMs(w, now) ?? -1);
  }
}

/**
 * The workloads in the table's order: by the column, ties by project and name, so the
 * order is the same from one refresh to the next. `descending` turns the column's order
 * around (not the tie-break).
 */
export function sortTable(workloads: IWorkload[], sort: ISort, now: number): IWorkload[] {
  const by = compareBy(sort.column, now);
  const sign = sort.descending ? -1 : 1;
  return [...workloads].sort((a, b) => sign * by(a, b) || workloadKey(a).localeCompare(workloadKey(b)));
}

/** A click on a column's header: the same column turns its order around, another starts ascending. */
export function nextSort(current: ISort, column: SortColumn): ISort {
  return current.column === column ? { column, descending: !current.descending } : { column, descending: false };
}

/** The view and sort saved in the state database, each taken only when it is of the right kind. */
export function restoredLayout(saved: unknown, defaultView: SidebarView = 'cards'): { view: SidebarView; sort: ISort } {
  const s = (saved && typeof saved === 'object' ? saved : {}) as Record<string, any>;
  const view: SidebarView = s.view === 'table' || s.view === 'cards' ? s.view : defaultView;
  const column = s.sort?.column;
  const sort: ISort = TABLE_COLUMNS.some(c => c.column === column)
    ? { column, descending: s.sort.descending === true }
    : { ...DEFAULT_SORT };
  return { view, sort };
}

export type BulkAction = 'stop' | 'delete';

/**
 * The selected workloads that a bulk action applies to, in the order given: Stop takes the
 * pending and running ones, Delete every one not already being deleted. The others are
 * left as they are (and the button says how many it acts on).
 */
export function bulkTargets(workloads: IWorkload[], selected: ReadonlySet<string>, action: BulkAction): IWorkload[] {
  return workloads.filter(w => {
    if (!selected.has(workloadKey(w))) {
      return false;
    }
    const phase = w.status.phase;
    return action === 'stop' ? phase === 'Pending' || phase === 'Running' : phase !== 'Deleting';
  });
}

/** The finished workloads (succeeded, failed, stopped) among those shown: what Clear finished deletes. */
export function finishedTargets(workloads: IWorkload[]): IWorkload[] {
  return workloads.filter(w => isFinished(w.status.phase));
}

/** The selection kept to the workloads still shown (a deleted or filtered-out one drops out). */
export function prunedSelection(selected: ReadonlySet<string>, shown: IWorkload[]): Set<string> {
  const keys = new Set(shown.map(workloadKey));
  return new Set([...selected].filter(k => keys.has(k)));
}
