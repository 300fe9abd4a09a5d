/** The effective workload policy of a project and kind (`GET policies/effective`) in the "New workload"
 * form: the server sends the form's defaults and bounds with the policy applied (`form`, narrowed by
 * `server/form.py`'s narrow_form, the one place that does it); the form takes them, and moves the fields
 * the user left at the old defaults to the new ones. Pure functions. */

import type { IFormState } from './form';
import { IFormInfo } from './types';

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
  /** the form's defaults and bounds with this policy applied (absent from older servers) */
  form?: IFormInfo;
}

/** The form info to use for a policy: the server's narrowed form, else the form as it is. */
export function applyPolicy(form: IFormInfo, policy: IEffectivePolicy | null | undefined): IFormInfo {
  if (!policy?.form || (!Object.keys(policy.defaults ?? {}).length && !Object.keys(policy.rules ?? {}).length)) {
    return form;
  }
  // the kinds, commands and name rules are the form's own; the policy changes defaults and bounds
  return { ...form, defaults: { ...form.defaults, ...policy.form.defaults, commands: form.defaults.commands }, bounds: policy.form.bounds, node_pools: policy.form.node_pools, priority_classes: policy.form.priority_classes ?? form.priority_classes };
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
