/** "Copy as `runai submit`": the command line that submits the same spec with the `runai` CLI
 * (jupyter_runai/submit_args.py), every word quoted for a POSIX shell. Pure functions. */

import { IWorkloadSpec } from './types';

/**
 * One word for a POSIX shell: as it is when it is plain; in double quotes when it has single
 * quotes and nothing a shell expands inside double quotes (`python -c "print('hi')"`, as people
 * write it); else in single quotes.
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) {
    return word;
  }
  if (word.includes("'") && !/["\\$`!]/.test(word)) {
    return `"${word}"`;
  }
  return `'${word.replace(/'/g, `'"'"'`)}'`;
}

/** The priority class a kind gets when none is named (models/workload.py DEFAULT_PRIORITY_CLASS). */
export const KIND_PRIORITY: Record<string, string> = { workspace: 'build', training: 'train', distributed: 'train', inference: 'inference' };
/** The numbers of the named classes: below 100 is preemptible unless said otherwise. */
const PRIORITY: Record<string, number> = { train: 50, 'build-preemptible': 75, build: 100, inference: 125 };
/** an inference endpoint's target concurrency when none is given (models/workload.py) */
const TARGET_CONCURRENCY = 4;

export interface ISubmitLine {
  /** `runai submit NAME -p PROJECT ... -- COMMAND` */
  line: string;
  /** fields of the spec the CLI has no option for (the line submits without them) */
  omitted: string[];
}

/**
 * The priority class and preemptibility the spec chose, each null where it is what the kind or
 * the priority gives anyway (the server fills those in: they were not a choice).
 */
export function chosenPriority(spec: IWorkloadSpec): { priorityClass: string | null; preemptible: boolean | null } {
  const byKind = KIND_PRIORITY[spec.kind];
  const cls = spec.priority_class || byKind;
  const number = PRIORITY[cls];
  const byPriority = number === undefined ? null : number < 100;
  return {
    priorityClass: spec.priority_class && spec.priority_class !== byKind ? spec.priority_class : null,
    preemptible: spec.preemptible === null || spec.preemptible === undefined || spec.preemptible === byPriority ? null : spec.preemptible
  };
}

function present(value: unknown): boolean {
  return value !== null && value !== undefined && value !== '';
}

/**
 * The `runai submit` line for a spec, as the form builds it or as the server answers it (with
 * its defaults filled in: those are left out, so the line says what was chosen). The command
 * goes after `--`: a string as one word (it runs in a shell), a list word by word.
 */
export function submitLine(spec: IWorkloadSpec): ISubmitLine {
  const words: string[] = ['runai', 'submit', spec.name, '-p', spec.project];
  const omitted: string[] = [];
  const opt = (flag: string, value: unknown) => {
    if (present(value)) {
      words.push(flag, String(value));
    }
  };
  if (spec.kind !== 'training') {
    opt('--kind', spec.kind);
  }
  const r = spec.resources ?? {};
  if (r.gpu_memory) {
    opt('--gpu-memory', r.gpu_memory);
  } else if (r.gpu) {
    opt('--gpu', r.gpu);
  }
  if (r.gpu_limit !== null && r.gpu_limit !== undefined) {
    opt('--gpu-limit', r.gpu_limit);
  }
  if (r.gpu_devices && r.gpu_devices > 1) {
    opt('--gpu-devices', r.gpu_devices);
  }
  for (const [key, flag] of [
    ['cpu', '--cpu'],
    ['cpu_limit', '--cpu-limit'],
    ['memory', '--memory'],
    ['memory_limit', '--memory-limit']
  ] as const) {
    const value = r[key];
    if (present(value) && value !== '0') {
      opt(flag, value);
    }
  }
  if (spec.kind === 'distributed') {
    opt('--workers', spec.workers);
    const total = (spec.workers ?? 0) + (spec.master === false ? 0 : 1);
    if (present(spec.min_available) && spec.min_available !== total) {
      opt('--min-available', spec.min_available);
    }
  }
  if (spec.kind === 'inference') {
    const min = spec.min_replicas ?? 1;
    if (min !== 1) {
      opt('--min-replicas', min);
    }
    if (present(spec.max_replicas) && spec.max_replicas !== min) {
      opt('--max-replicas', spec.max_replicas);
    }
  }
  if (spec.backoff_limit) {
    opt('--backoff-limit', spec.backoff_limit);
  }
  if (spec.node_pools?.length) {
    opt('--node-pools', spec.node_pools.join(','));
  }
  const chosen = chosenPriority(spec);
  opt('--priority-class', chosen.priorityClass);
  if (chosen.preemptible !== null) {
    words.push(chosen.preemptible ? '--preemptible' : '--non-preemptible');
  }
  if ((spec as { queue_anyway?: boolean }).queue_anyway) {
    words.push('--queue-anyway');
  }
  opt('--image', spec.image);
  opt('--working-dir', spec.working_dir);
  opt('--python-env', spec.python_env);
  for (const [key, value] of Object.entries(spec.environment ?? {})) {
    words.push('-e', `${key}=${value}`);
  }
  for (const name of spec.data_sources ?? []) {
    opt('--data-source', name);
  }
  for (const name of spec.credentials ?? []) {
    opt('--credential', name);
  }
  if (spec.master_resources) {
    omitted.push('master_resources');
  }
  if (spec.master === false) {
    omitted.push('master');
  }
  const target = (spec as { target_concurrency?: number | null }).target_concurrency;
  if (present(target) && target !== TARGET_CONCURRENCY) {
    omitted.push('target_concurrency');
  }
  const command = spec.command;
  if (typeof command === 'string' && command !== '') {
    words.push('--', command);
  } else if (Array.isArray(command) && command.length) {
    words.push('--', ...command);
  }
  // the first two words and the options are plain; every value is quoted as it needs
  return { line: words.map(shellQuote).join(' '), omitted };
}
