/** The workload list's rows as data: what one row shows, whether a refresh changes it, and
 * how the list's keyed rows move from one refresh to the next. Pure functions: the sidebar
 * patches the DOM from these, so a row (and the button under the pointer) survives a refresh
 * that does not change it. */

import { gpuRequestLabel, gpuRequestTitle, KIND_SHORT, phaseClass, queueLabel } from './format';
import { IWorkload } from './types';
import { availableActions, evictionOf, explainPending, IPendingExplanation, openUrl, workloadKey } from './workloads';

/** The row's actions, in the order they are shown. */
export type RowAction = 'logs' | 'stop' | 'resume' | 'delete';
export const ROW_ACTIONS: RowAction[] = ['logs', 'stop', 'resume', 'delete'];

export interface IRowView {
  key: string;
  name: string;
  project: string;
  /** the project is named in the row (the list shows all projects) */
  showProject: boolean;
  phase: string;
  chipClass: string;
  chipTitle: string;
  kind: string;
  gpuLabel: string;
  gpuTitle: string;
  pods: string | null;
  /** a pending workload: what it waits for */
  pending: IPendingExplanation | null;
  /** a pending workload's place in its project's queue, in words */
  queue: string | null;
  /** it waits because it was evicted: why (and by what, when the scheduler says) */
  evicted: string | null;
  /** a failed or stopped workload's message */
  message: string | null;
  openUrl: string | null;
  actions: RowAction[];
}

/** Everything a row shows except its age (which ticks on its own). */
export function rowView(w: IWorkload, showProject: boolean): IRowView {
  const phase = w.status.phase;
  const available = availableActions(w);
  return {
    key: workloadKey(w),
    name: w.spec.name,
    project: w.spec.project,
    showProject,
    phase,
    chipClass: phaseClass(phase),
    chipTitle: w.status.message ?? phase,
    kind: KIND_SHORT[w.spec.kind] ?? w.spec.kind,
    gpuLabel: gpuLabelOf(w),
    gpuTitle: gpuRequestTitle(w.spec.resources),
    pods: w.status.pods.length > 1 ? `${w.status.pods.length} pods` : null,
    pending: phase === 'Pending' ? explainPending(w.status.pending_reason) : null,
    queue: phase === 'Pending' && w.status.queue_position ? queueLabel(w.status.queue_position) : null,
    evicted: phase === 'Pending' ? evictionOf(w) : null,
    message: (phase === 'Failed' || phase === 'Stopped') && w.status.message ? w.status.message : null,
    openUrl: openUrl(w),
    actions: ROW_ACTIONS.filter(a => available[a])
  };
}

/** Several pods: the request is each pod's ("1 GPU per pod · 4 pods" is not a total). */
function gpuLabelOf(w: IWorkload): string {
  const label = gpuRequestLabel(w.spec.resources);
  const s = w.spec;
  const several = w.status.pods.length > 1 || s.kind === 'distributed' || (s.kind === 'inference' && Math.max(s.min_replicas ?? 1, s.max_replicas ?? 1) > 1);
  return several && label !== 'no GPU' ? `${label} per pod` : label;
}

/** The parts of a row, each compared on its own: a refresh patches only the parts that changed. */
export type RowPart = 'head' | 'meta' | 'why' | 'message' | 'actions';

/** Which parts of a row differ between two views of it (all of them when there was none). */
export function changedParts(before: IRowView | null, after: IRowView): RowPart[] {
  if (!before) {
    return ['head', 'meta', 'why', 'message', 'actions'];
  }
  const differ = (...keys: (keyof IRowView)[]) => keys.some(k => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  const out: RowPart[] = [];
  if (differ('name', 'project', 'showProject', 'phase', 'chipClass', 'chipTitle')) {
    out.push('head');
  }
  if (differ('kind', 'gpuLabel', 'gpuTitle', 'pods')) {
    out.push('meta');
  }
  if (differ('pending', 'evicted', 'queue')) {
    out.push('why');
  }
  if (differ('message')) {
    out.push('message');
  }
  if (differ('openUrl', 'actions')) {
    out.push('actions');
  }
  return out;
}

export interface IListPlan {
  /** rows to drop (their workloads left the list) */
  remove: string[];
  /** rows to create */
  add: string[];
  /** rows that stay, and move: the fewest moves that put the kept rows in the new order */
  move: string[];
}

/**
 * From the keys shown now to the keys to show: which rows go, which come, and which of the
 * kept rows must move. A kept row in its order relative to the others is left where it is
 * (the rows kept in place are a longest increasing run of their old positions), so a
 * workload arriving or ending moves no other row.
 */
export function planList(current: string[], next: string[]): IListPlan {
  const nextSet = new Set(next);
  const position = new Map(current.map((k, i) => [k, i]));
  const remove = current.filter(k => !nextSet.has(k));
  const add = next.filter(k => !position.has(k));
  const kept = next.filter(k => position.has(k));
  const stay = longestIncreasing(kept.map(k => position.get(k) as number));
  const move = kept.filter((_, i) => !stay.has(i));
  return { remove, add, move };
}

/** Indices (into `values`) of one longest strictly increasing subsequence. */
function longestIncreasing(values: number[]): Set<number> {
  const tails: number[] = []; // index into values of the smallest tail of each length
  const previous: number[] = new Array(values.length).fill(-1);
  for (let i = 0; i < values.length; i++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (values[tails[mid]] < values[i]) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    previous[i] = lo > 0 ? tails[lo - 1] : -1;
    tails[lo] = i;
  }
  const out = new Set<number>();
  for (let i = tails.length ? tails[tails.length - 1] : -1; i >= 0; i = previous[i]) {
    out.add(i);
  }
  return out;
}
