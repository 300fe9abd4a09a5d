/** The effective workload policy of a project and kind (`GET policies/effective`) applied to the
 * "New workload" form: its defaults replace the form's, its bounds narrow the form's. Pure functions. */

import { parseCpu } from './form';
import { parseMemory } from './format';
import { IFormInfo } from './types';
import type { IFormState } from './form';

export interface IPolicyRule {
  required?: boolean;
  min?: number | string;
  max?: number | string;
  step?: number | string;
  allowed?: unknown[];
  can_edit?: boolean;
  from?: string[];
}

export interface IEffectivePolicy {
  project: string;
  kind: string;
  policies: string[];
  /** field path ("resources.gpu", "image") -> the value a submission gets when it leaves the field out */
  defaults: Record<string, unknown>;
  rules: Record<string, IPolicyRule>;
}

const num = (value: unknown): number => (typeof value === 'number' ? value : NaN);

/** The smaller of two quantity texts (either may be missing), as the form shows them. */
function smallerQuantity(a: string | null, b: unknown, parse: (t: string) => number): string | null {
  if (b === undefined || b === null) {
    return a;
  }
  const text = String(b);
  if (a === null || isNaN(parse(a)) || parse(text) < parse(a)) {
    return text;
  }
  return a;
}

/** The form's defaults and bounds narrowed by a policy (no policy: the form as it is). */
export function applyPolicy(form: IFormInfo, policy: IEffectivePolicy | null | undefined): IFormInfo {
  if (!policy || (!Object.keys(policy.defaults ?? {}).length && !Object.keys(policy.rules ?? {}).length)) {
    return form;
  }
  const defaults = { ...form.defaults };
  const bounds = {
    ...form.bounds,
    gpu: { ...form.bounds.gpu },
    fraction: { ...form.bounds.fraction, steps: [...form.bounds.fraction.steps] },
    gpu_memory: { ...form.bounds.gpu_memory },
    cpu: { ...form.bounds.cpu },
    memory: { ...form.bounds.memory },
    workers: { ...form.bounds.workers },
    replicas: { ...form.bounds.replicas },
    backoff_limit: { ...form.bounds.backoff_limit }
  };
  const d = policy.defaults;
  const gpu = num(d['resources.gpu']);
  if (gpu === 0) {
    defaults.gpu_mode = 'none';
  } else if (gpu >= 1) {
    defaults.gpu_mode = 'whole';
    defaults.gpu = gpu;
  } else if (gpu > 0) {
    defaults.gpu_mode = 'fraction';
    defaults.fraction = gpu;
  }
  if (typeof d['resources.gpu_memory'] === 'string') {
    defaults.gpu_mode = 'memory';
    defaults.gpu_memory = d['resources.gpu_memory'] as string;
  }
  for (const [path, key] of [['resources.cpu', 'cpu'], ['resources.memory', 'memory'], ['image', 'image']] as const) {
    if (d[path] !== undefined && d[path] !== null) {
      defaults[key] = String(d[path]);
    }
  }
  for (const [path, key] of [['workers', 'workers'], ['min_replicas', 'min_replicas'], ['max_replicas', 'max_replicas'], ['backoff_limit', 'backoff_limit']] as const) {
    if (typeof d[path] === 'number') {
      defaults[key] = d[path] as number;
    }
  }

  const r = policy.rules;
  const gpuRule = r['resources.gpu'];
  if (gpuRule) {
    const most = num(gpuRule.max);
    const least = num(gpuRule.min);
    if (!isNaN(most)) {
      bounds.gpu.max = Math.min(bounds.gpu.max, Math.floor(most));
      bounds.fraction.max = Math.min(bounds.fraction.max, most);
    }
    if (!isNaN(least)) {
      bounds.gpu.min = Math.max(bounds.gpu.min, least);
      bounds.fraction.min = Math.max(bounds.fraction.min, least);
    }
    const step = num(gpuRule.step);
    const onStep = (v: number) => isNaN(step) || Math.abs(v / step - Math.round(v / step)) < 1e-9;
    bounds.fraction.steps = bounds.fraction.steps.filter(v => v >= bounds.fraction.min && v <= bounds.fraction.max && onStep(v));
    if (Array.isArray(gpuRule.allowed)) {
      const allowed = gpuRule.allowed.map(num);
      bounds.fraction.steps = bounds.fraction.steps.filter(v => allowed.includes(v));
    }
  }
  bounds.gpu_memory.max = smallerQuantity(bounds.gpu_memory.max, r['resources.gpu_memory']?.max, parseMemory);
  bounds.cpu.max = smallerQuantity(bounds.cpu.max, r['resources.cpu']?.max, parseCpu);
  bounds.memory.max = smallerQuantity(bounds.memory.max, r['resources.memory']?.max, parseMemory);
  const whole = (bound: { min: number; max: number }, rule: IPolicyRule | undefined) => {
    if (!isNaN(num(rule?.max))) {
      bound.max = Math.min(bound.max, num(rule?.max));
    }
    if (!isNaN(num(rule?.min))) {
      bound.min = Math.max(bound.min, num(rule?.min));
    }
  };
  whole(bounds.workers, r['workers']);
  whole(bounds.replicas, r['max_replicas']);
  whole(bounds.backoff_limit, r['backoff_limit']);
  let nodePools = form.node_pools;
  if (Array.isArray(r['node_pools']?.allowed)) {
    const allowed = r['node_pools'].allowed as unknown[];
    nodePools = nodePools.filter(p => allowed.includes(p));
  }
  let priorityClasses = form.priority_classes;
  if (priorityClasses && Array.isArray(r['priority_class']?.allowed)) {
    const allowed = r['priority_class'].allowed as unknown[];
    priorityClasses = priorityClasses.filter(c => allowed.includes(c));
  }
  return { ...form, defaults, bounds, node_pools: nodePools, priority_classes: priorityClasses };
}

/** Form fields that follow the defaults, and the state key each is held in. */
const FOLLOWS: [keyof IFormState, keyof IFormInfo['defaults']][] = [
  ['gpu', 'gpu'],
  ['fraction', 'fraction'],
  ['gpuMemory', 'gpu_memory'],
  ['cpu', 'cpu'],
  ['memory', 'memory'],
  ['image', 'image'],
  ['workers', 'workers'],
  ['minReplicas', 'min_replicas'],
  ['maxReplicas', 'max_replicas'],
  ['backoffLimit', 'backoff_limit']
];

/** When the defaults change (another project or kind, its policy loaded): each field the user left at
 * the old default takes the new one; what the user typed stays. */
export function rebaseDefaults(state: IFormState, before: IFormInfo, after: IFormInfo): IFormState {
  const next: IFormState = { ...state };
  const was = before.defaults;
  const now = after.defaults;
  const modeOf = (d: IFormInfo['defaults']) => (d.gpu > 0 ? d.gpu_mode : 'none'); // as initialState
  if (state.gpuMode === modeOf(was)) {
    next.gpuMode = modeOf(now);
  }
  for (const [key, field] of FOLLOWS) {
    if ((state[key] as unknown) === (was[field] ?? '')) {
      (next as any)[key] = now[field] ?? '';
    }
  }
  return next;
}
