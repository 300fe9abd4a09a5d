/** "Clone": the New workload form filled in from a workload's spec, under a free name. Pure. */

import { commandText } from './details';
import { IFormState, initialState } from './form';
import { chosenPriority } from './submitline';
import { IFormInfo, IWorkloadSpec } from './types';

/** "train-1" -> "train-2" (the first free number after it); "bert" -> "bert-2"; at most `max` characters. */
export function cloneName(name: string, taken: Iterable<string>, max = 63): string {
  const names = new Set(taken);
  const match = /^(.*)-(\d+)$/.exec(name);
  const base = match ? match[1] : name;
  let n = match ? Number(match[2]) + 1 : 2;
  for (; n < 1_000_000; n++) {
    const suffix = `-${n}`;
    const candidate = `${base.slice(0, max - suffix.length).replace(/-+$/, '')}${suffix}`;
    if (!names.has(candidate)) {
      return candidate;
    }
  }
  return base.slice(0, max);
}

const blankZero = (value: string | null | undefined) => (value && value !== '0' ? value : '');

/** The form's state that submits the same spec again (under a free name in its project). */
export function stateFromSpec(spec: IWorkloadSpec, info: IFormInfo, taken: Iterable<string>): IFormState {
  const base = initialState(info, spec.project, taken);
  const r = spec.resources ?? {};
  const gpu = r.gpu ?? 0;
  const state: IFormState = {
    ...base,
    kind: spec.kind,
    name: cloneName(spec.name, taken, info.name_max),
    project: spec.project,
    gpuMode: r.gpu_memory ? 'memory' : gpu >= 1 ? 'whole' : gpu > 0 ? 'fraction' : 'none',
    gpu: gpu >= 1 ? gpu : base.gpu,
    fraction: gpu > 0 && gpu < 1 ? gpu : base.fraction,
    dynamic: gpu > 0 && gpu < 1 && !!r.gpu_limit && r.gpu_limit > gpu,
    gpuLimit: r.gpu_limit ?? base.gpuLimit,
    gpuMemory: r.gpu_memory ?? '',
    gpuDevices: r.gpu_devices ?? 1,
    cpu: blankZero(r.cpu),
    memory: blankZero(r.memory),
    cpuLimit: r.cpu_limit ?? '',
    memoryLimit: r.memory_limit ?? '',
    image: spec.image ?? '',
    command: commandText(spec.command),
    environment: Object.entries(spec.environment ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    nodePools: [...(spec.node_pools ?? [])],
    workingDir: spec.working_dir ?? '',
    pythonEnv: spec.python_env ?? '',
    dataSources: [...(spec.data_sources ?? [])],
    credentials: [...(spec.credentials ?? [])]
  };
  if (spec.kind === 'distributed') {
    state.workers = spec.workers ?? base.workers;
    const total = state.workers + (spec.master === false ? 0 : 1);
    state.minAvailable = spec.min_available !== null && spec.min_available !== undefined && spec.min_available !== total ? String(spec.min_available) : '';
  }
  if (spec.kind === 'inference') {
    state.minReplicas = spec.min_replicas ?? base.minReplicas;
    state.maxReplicas = spec.max_replicas ?? state.minReplicas;
  }
  if (spec.kind === 'training') {
    state.backoffLimit = spec.backoff_limit ?? 0;
  }
  const chosen = chosenPriority(spec);
  state.priorityClass = chosen.priorityClass ?? '';
  state.preemptible = chosen.preemptible === null ? 'default' : chosen.preemptible ? 'yes' : 'no';
  return state;
}
