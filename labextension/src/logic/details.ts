/** A workload's details view (what `runai describe` shows): the spec in words, its pods and its
 * latest events. Pure functions. */

import { agoLabel, gpuRequestLabel } from './format';
import { shellQuote } from './submitline';
import { IPodStatus, IResources, IRunaiEvent, IWorkload } from './types';

export interface IDetailRow {
  /** a stable id (tests, styling) */
  key: string;
  label: string;
  value: string;
  /** a longer text for the tooltip */
  title?: string;
}

/** "0.5 GPU · CPU 500m (limit 2) · memory 4Gi" — the resources of one pod, as people say them. */
export function resourcesText(resources: IResources | null | undefined): string {
  const r = resources ?? {};
  const parts = [gpuRequestLabel(r)];
  for (const [key, label] of [
    ['cpu', 'CPU'],
    ['memory', 'memory']
  ] as const) {
    const value = r[key];
    if (value !== null && value !== undefined && value !== '' && value !== '0') {
      const limit = r[`${key}_limit` as 'cpu_limit' | 'memory_limit'];
      parts.push(`${label} ${value}${limit ? ` (limit ${limit})` : ''}`);
    }
  }
  return parts.join(' · ');
}

/** "build, not preemptible", "by kind, preemptible", "by kind". */
export function priorityText(priorityClass: string | null | undefined, preemptible: boolean | null | undefined): string {
  const cls = priorityClass || 'by kind';
  if (preemptible === null || preemptible === undefined) {
    return cls;
  }
  return `${cls}, ${preemptible ? 'preemptible' : 'not preemptible'}`;
}

/** The command as one line: a list is quoted word by word where needed. */
export function commandText(command: string | string[] | null | undefined): string {
  if (command === null || command === undefined) {
    return '';
  }
  if (typeof command === 'string') {
    return command;
  }
  return command.map(shellQuote).join(' ');
}

/** How many pods the spec asks for, in words (distributed and inference only), else null. */
export function podsText(w: IWorkload): string | null {
  const s = w.spec;
  if (s.kind === 'distributed') {
    const master = s.master !== false;
    const workers = s.workers ?? 0;
    const total = workers + (master ? 1 : 0);
    const together = s.min_available ?? total;
    return `${total} (${master ? 'a master and ' : ''}${workers} worker${workers === 1 ? '' : 's'}), ${together === total ? 'all' : `at least ${together}`} start together`;
  }
  if (s.kind === 'inference') {
    const min = s.min_replicas ?? 1;
    const max = s.max_replicas ?? min;
    return min === max ? `${min} replica${min === 1 ? '' : 's'}` : `${min} to ${max} replicas (scaled on load)`;
  }
  return null;
}

function when(value: string | null | undefined, now: number): string {
  if (!value) {
    return '';
  }
  const t = new Date(value);
  if (isNaN(t.getTime())) {
    return value;
  }
  const sameDay = new Date(now).toDateString() === t.toDateString();
  return `${sameDay ? t.toLocaleTimeString() : t.toLocaleString()} (${agoLabel(value, now)})`;
}

/**
 * The spec and status as label/value rows, in the order `runai describe` prints them.
 * Rows without a value are left out. Environment variables show their names only.
 */
export function specRows(w: IWorkload, now: number = Date.now()): IDetailRow[] {
  const s = w.spec;
  const st = w.status;
  const rows: IDetailRow[] = [];
  const add = (key: string, label: string, value: string | null | undefined, title?: string) => {
    if (value) {
      rows.push({ key, label, value, title });
    }
  };
  add('kind', 'Kind', s.kind);
  add('project', 'Project', s.project);
  add('message', 'Message', st.phase !== 'Pending' ? st.message : null);
  add('submitted', 'Submitted', when(st.submitted_at, now) + (w.submitted_by ? ` by ${w.submitted_by}` : ''));
  add('started', 'Started', when(st.started_at, now));
  add('finished', 'Finished', when(st.finished_at, now));
  add('restarts', 'Restarts', st.restarts ? String(st.restarts) : null);
  add('resources', 'Resources', `${resourcesText(s.resources)} per pod`);
  if (s.kind === 'distributed' && s.master_resources) {
    add('master', 'Master', resourcesText(s.master_resources));
  }
  add('pods', s.kind === 'inference' ? 'Replicas' : 'Pods', podsText(w));
  add('retries', 'Retries', s.kind === 'training' && s.backoff_limit ? `${s.backoff_limit} after a failure` : null);
  add('priority', 'Priority', priorityText(s.priority_class, s.preemptible));
  add('node_pools', 'Node pools', (s.node_pools ?? []).join(' → ') || 'any');
  add('image', 'Image', s.image);
  add('command', 'Command', commandText(s.command));
  add('working_dir', 'Working dir', s.working_dir);
  add('python_env', 'Python env', s.python_env);
  const env = Object.keys(s.environment ?? {});
  add('environment', 'Environment', env.join(', '), env.length ? 'variable names; values are in the spec' : undefined);
  add('data_sources', 'Data sources', (s.data_sources ?? []).join(', '));
  add('credentials', 'Credentials', (s.credentials ?? []).join(', '));
  add('uid', 'UID', w.uid);
  return rows;
}

export interface IPodRow {
  name: string;
  phase: string;
  node: string;
  devices: string;
  share: string;
  started: string;
  message: string;
}

/** One row per pod: node, devices, the share it holds (fraction, memory or whole), phase, message. */
export function podRow(pod: IPodStatus, now: number = Date.now()): IPodRow {
  const devices = pod.devices ?? [];
  let share = '—';
  if (pod.fraction !== null && pod.fraction !== undefined) {
    share = `${Number(pod.fraction.toFixed(2))} of a GPU`;
  } else if (pod.gpu_memory) {
    share = `${pod.gpu_memory} GPU memory`;
  } else if (devices.length) {
    share = devices.length === 1 ? 'whole GPU' : `${devices.length} whole GPUs`;
  }
  return {
    name: pod.name,
    phase: pod.phase,
    node: pod.node ?? '—',
    devices: devices.length ? devices.map(d => `GPU ${d}`).join(', ') : '—',
    share,
    started: pod.started_at ? agoLabel(pod.started_at, now) : '—',
    message: pod.message ?? ''
  };
}

/** Events newest first, at most `limit`. */
export function latestEvents(events: IRunaiEvent[] | null | undefined, limit = 30): IRunaiEvent[] {
  return [...(events ?? [])].sort((a, b) => b.id - a.id).slice(0, limit);
}

/** The event type's colour class: warnings and failures stand out. */
export function eventClass(type: string): string {
  switch (type) {
    case 'Failed':
    case 'Evicted':
    case 'Warning':
      return 'warn';
    case 'Pending':
      return 'pending';
    case 'Started':
    case 'Scheduled':
    case 'Succeeded':
    case 'Resumed':
      return 'good';
    default:
      return 'plain';
  }
}
