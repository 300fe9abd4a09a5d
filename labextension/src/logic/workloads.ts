/** Workload list logic: pending reasons in words, filters, which actions apply, links. Pure functions. */

import { isFinished } from './format';
import { IWorkload, Phase } from './types';

export interface IPendingExplanation {
  /** a few plain words: what it waits for */
  summary: string;
  /** the scheduler's reasons, one sentence each, capitalised */
  details: string[];
}

function capitalise(text: string): string {
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
}

/**
 * The scheduler's reason why a workload waits, in plain words: a short summary and the
 * scheduler's own sentences (without the pod prefix it writes for logs).
 */
export function explainPending(reason: string | null | undefined): IPendingExplanation {
  if (!reason) {
    return { summary: 'Queued: waiting for the next scheduling cycle', details: [] };
  }
  const cleaned = reason.replace(/(^|; )pod \S+ /, '$1');
  const details = cleaned
    .split(/;\s+/)
    .map(s => capitalise(s.trim()))
    .filter(s => s.length > 0);
  const text = reason.toLowerCase();
  let summary = 'Waiting to be scheduled';
  if (text.startsWith('starting:')) {
    // placed: the scheduler's words would only repeat the summary; say what it waits for instead
    return {
      summary: 'Starting: its server does not answer yet',
      details: ['Its pods run; it turns Running once its server answers on $PORT']
    };
  } else if (text.includes('minimum runtime')) {
    summary = 'Waiting for pods protected by their minimum runtime';
  } else if (text.startsWith('all ') && text.includes('must start together')) {
    summary = 'Waiting until all its pods fit at once';
  } else if (text.includes('no node matches')) {
    summary = 'No node in the chosen node pools';
  } else if (
    text.includes('largest free fraction') ||
    text.includes('of gpu memory') ||
    (text.includes('of a gpu') && text.includes('fully allocated'))
  ) {
    summary = 'Waiting for room on a GPU';
  } else if (text.includes('whole gpu')) {
    summary = 'Waiting for free GPUs';
  } else if (text.includes('cpu is short') || text.includes('memory is short')) {
    summary = 'Waiting for CPU or memory';
  } else if (text.includes('limit')) {
    summary = "Over the project's limit";
  } else if (text.includes('deserved') || text.includes('fair share') || text.includes('quota')) {
    summary = "Waiting for the project's quota";
  }
  return { summary, details };
}

export type StatusFilter = 'all' | 'active' | 'pending' | 'running' | 'finished' | 'failed';

export const STATUS_FILTERS: { value: StatusFilter; label: string }[] = [
  { value: 'all', label: 'All' },
  { value: 'active', label: 'Active' },
  { value: 'pending', label: 'Pending' },
  { value: 'running', label: 'Running' },
  { value: 'finished', label: 'Finished' },
  { value: 'failed', label: 'Failed' }
];

export function matchesStatus(phase: Phase | string, filter: StatusFilter): boolean {
  switch (filter) {
    case 'all':
      return true;
    case 'active':
      return !isFinished(phase);
    case 'pending':
      return phase === 'Pending';
    case 'running':
      return phase === 'Running';
    case 'finished':
      return isFinished(phase);
    case 'failed':
      return phase === 'Failed';
  }
  return true;
}

export interface IFilter {
  project: string | null;
  status: StatusFilter;
  kind: string; // 'all' or a kind
  text: string;
}

export function filterWorkloads(workloads: IWorkload[], filter: IFilter): IWorkload[] {
  const text = filter.text.trim().toLowerCase();
  return workloads.filter(
    w =>
      (!filter.project || w.spec.project === filter.project) &&
      matchesStatus(w.status.phase, filter.status) &&
      (filter.kind === 'all' || w.spec.kind === filter.kind) &&
      (!text || w.spec.name.toLowerCase().includes(text))
  );
}

/** Counts per status filter (for the filter's labels). */
export function statusCounts(workloads: IWorkload[]): Record<StatusFilter, number> {
  const out = {} as Record<StatusFilter, number>;
  for (const f of STATUS_FILTERS) {
    out[f.value] = workloads.filter(w => matchesStatus(w.status.phase, f.value)).length;
  }
  return out;
}

export interface IActions {
  stop: boolean;
  resume: boolean;
  delete: boolean;
  logs: boolean;
  open: boolean;
}

/** Which actions make sense in the workload's phase (the server refuses the others anyway). */
export function availableActions(w: IWorkload): IActions {
  const phase = w.status.phase;
  const hasStarted = w.status.pods.some(p => !!p.started_at) || !!w.status.started_at;
  return {
    stop: phase === 'Pending' || phase === 'Running',
    resume: isFinished(phase),
    delete: phase !== 'Deleting',
    logs: hasStarted,
    open: !!openUrl(w)
  };
}

/** A running workspace's or inference endpoint's URL (server-relative, with the base URL), else null. */
export function openUrl(w: IWorkload): string | null {
  if (w.status.phase !== 'Running' || !w.status.url) {
    return null;
  }
  if (w.spec.kind !== 'workspace' && w.spec.kind !== 'inference') {
    return null;
  }
  return w.status.url;
}

/** Sort: active first in queue order (the server's), then finished ones, newest first. */
export function sortWorkloads(workloads: IWorkload[]): IWorkload[] {
  const active = workloads.filter(w => !isFinished(w.status.phase));
  const done = workloads
    .filter(w => isFinished(w.status.phase))
    .sort((a, b) => (b.status.finished_at ?? '').localeCompare(a.status.finished_at ?? ''));
  return [...active, ...done];
}

export function workloadKey(w: { spec: { project: string; name: string } }): string {
  return `${w.spec.project}/${w.spec.name}`;
}

/**
 * Why a waiting workload lost its place, from its pods' messages ("evicted: <why>; waiting
 * to be placed again"): "Evicted: <why>", or null when none of its pods was evicted.
 */
export function evictionOf(w: IWorkload): string | null {
  const evicted = w.status.pods.filter(p => /^evicted\b/i.test(p.message ?? ''));
  if (!evicted.length) {
    return null;
  }
  const text = (evicted[0].message ?? '').replace(/;?\s*waiting to be placed again$/i, '').trim();
  const which = w.status.pods.length > 1 ? ` (${evicted.length === 1 ? `pod ${evicted[0].name}` : `${evicted.length} pods`})` : '';
  const why = text.replace(/^evicted\s*:\s*/i, '');
  return why === text ? `${capitalise(text)}${which}` : `Evicted${which}: ${why}`;
}

/**
 * A saved project and filters (from the state database) over the current ones: each value is
 * taken when it is of the right kind (a string project, a known status filter, a string
 * kind and name filter), else the current one stays.
 */
export function restoredFilter(current: IFilter, saved: Partial<IFilter> | null | undefined): IFilter {
  if (!saved || typeof saved !== 'object') {
    return current;
  }
  const str = (v: unknown, fallback: string) => (typeof v === 'string' ? v : fallback);
  return {
    project: typeof saved.project === 'string' && saved.project ? saved.project : current.project,
    status: STATUS_FILTERS.some(f => f.value === saved.status) ? (saved.status as StatusFilter) : current.status,
    kind: str(saved.kind, current.kind),
    text: str(saved.text, current.text)
  };
}
