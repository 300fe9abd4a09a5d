/** The "New workload" form's logic: its state, defaults from the server, the spec it submits,
 * suggested names, and where each server field error goes. Pure functions. */

import { bytesLabel, parseMemory } from './format';
import { GpuMode, IErrorBody, IFieldError, IFormInfo, IWorkloadSpec, Kind } from './types';

export interface IFormState {
  kind: Kind;
  name: string;
  project: string;
  gpuMode: GpuMode;
  gpu: number;
  fraction: number;
  dynamic: boolean;
  gpuLimit: number;
  gpuMemory: string;
  gpuDevices: number;
  cpu: string;
  memory: string;
  image: string;
  command: string;
  environment: string;
  workers: number;
  minReplicas: number;
  maxReplicas: number;
  backoffLimit: number;
  nodePools: string[];
  /** distributed: pods that must start together; '' = all */
  minAvailable: string;
  cpuLimit: string;
  memoryLimit: string;
  /** '' = by kind */
  priorityClass: string;
  /** 'default' = by priority */
  preemptible: 'default' | 'yes' | 'no';
  workingDir: string;
  pythonEnv: string;
  dataSources: string[];
  credentials: string[];
}

/** The form's fields (ids used for the inputs and their error slots). */
export const FIELDS = [
  'kind',
  'name',
  'project',
  'gpu_mode',
  'gpu',
  'fraction',
  'gpu_limit',
  'gpu_memory',
  'gpu_devices',
  'cpu',
  'cpu_limit',
  'memory',
  'memory_limit',
  'image',
  'command',
  'environment',
  'workers',
  'min_available',
  'min_replicas',
  'max_replicas',
  'backoff_limit',
  'working_dir',
  'python_env',
  'data_sources',
  'credentials',
  'priority_class',
  'preemptible',
  'node_pools'
] as const;

export type FieldId = (typeof FIELDS)[number];

const PREFIX: Record<string, string> = {
  workspace: 'ws',
  training: 'train',
  distributed: 'ddp',
  inference: 'serve'
};

/** "train-3": the kind's prefix and the first number not taken in the project. */
export function suggestName(kind: string, taken: Iterable<string>): string {
  const names = new Set(taken);
  const prefix = PREFIX[kind] ?? kind;
  for (let i = 1; ; i++) {
    const name = `${prefix}-${i}`;
    if (!names.has(name)) {
      return name;
    }
  }
}

export function initialState(info: IFormInfo, project: string | null, taken: Iterable<string>): IFormState {
  const d = info.defaults;
  const kind = d.kind;
  return {
    kind,
    name: suggestName(kind, taken),
    project: project ?? d.project,
    gpuMode: d.gpu > 0 ? d.gpu_mode : 'none',
    gpu: Math.max(1, d.gpu),
    fraction: d.fraction,
    dynamic: false,
    gpuLimit: 1,
    gpuMemory: d.gpu_memory ?? '',
    gpuDevices: d.gpu_devices,
    cpu: d.cpu,
    memory: d.memory,
    image: d.image,
    command: d.commands[kind] ?? '',
    environment: '',
    workers: d.workers,
    minReplicas: d.min_replicas,
    maxReplicas: d.max_replicas,
    backoffLimit: d.backoff_limit,
    nodePools: [],
    minAvailable: '',
    cpuLimit: '',
    memoryLimit: '',
    priorityClass: '',
    preemptible: 'default',
    workingDir: '',
    pythonEnv: '',
    dataSources: [],
    credentials: []
  };
}

/**
 * Switching kind: the suggested name and the default command follow the kind unless the
 * user changed them.
 */
export function changeKind(state: IFormState, kind: Kind, info: IFormInfo, taken: Iterable<string>): IFormState {
  const list = Array.from(taken);
  const next = { ...state, kind };
  if (state.name === suggestName(state.kind, list) || !state.name) {
    next.name = suggestName(kind, list);
  }
  const commands = info.defaults.commands;
  if (state.command === (commands[state.kind] ?? '') || !state.command) {
    next.command = commands[kind] ?? '';
  }
  return next;
}

/** The fields the kind shows beyond the common ones. */
export function kindFields(info: IFormInfo, kind: string): string[] {
  return info.kinds.find(k => k.name === kind)?.fields ?? [];
}

/** Snap a slider value to the nearest allowed fraction step. */
export function snapFraction(value: number, steps: number[]): number {
  let best = steps[0];
  for (const s of steps) {
    if (Math.abs(s - value) < Math.abs(best - value)) {
      best = s;
    }
  }
  return best;
}

export interface IParsedEnv {
  environment: Record<string, string>;
  /** a problem with a line, for the environment field */
  error: string | null;
}

/** "KEY=value" per line; blank lines and lines starting with # are skipped. */
export function parseEnvironment(text: string): IParsedEnv {
  const environment: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line || line.startsWith('#')) {
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) {
      return { environment, error: `line ${i + 1}: write NAME=value; got ${JSON.stringify(line)}` };
    }
    environment[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return { environment, error: null };
}

export interface IBuilt {
  spec: IWorkloadSpec | null;
  /** every problem found before asking the server, each beside its field (all at once) */
  errors: Partial<Record<FieldId, string>>;
}

export interface IBuildContext {
  /** the local cluster runs commands, not images: a command is required (except for a workspace) */
  localCluster?: boolean;
  /** names already used in the form's project */
  taken?: Iterable<string>;
}

/** Kubernetes CPU quantity ("500m", "2", "0.5") to cores; NaN when it is not one. */
export function parseCpu(text: string | null | undefined): number {
  const match = /^\s*([0-9]*\.?[0-9]+)\s*(m)?\s*$/.exec(String(text ?? ''));
  if (!match) {
    return NaN;
  }
  return parseFloat(match[1]) / (match[2] ? 1000 : 1);
}

/** A whole number in [min, max] (an empty field is not one). */
function wholeIn(value: number, min: number, max: number): boolean {
  return Number.isInteger(value) && value >= min && value <= max;
}

/**
 * The form's own checks, all of them at once: the bounds it shows (the most GPUs, CPU and
 * memory on one node, a device's memory: a request above them could never run), quantities
 * that do not parse, a name the project has, a command the local cluster needs. The server
 * checks again (and policies may narrow further); its refusals map back with placeErrors.
 */
export function checkState(state: IFormState, info: IFormInfo, context: IBuildContext = {}): Partial<Record<FieldId, string>> {
  const errors: Partial<Record<FieldId, string>> = {};
  const b = info.bounds;
  const name = state.name.trim();
  if (!name) {
    errors.name = 'required: lowercase letters, digits and -';
  } else if (name.length > info.name_max) {
    errors.name = `at most ${info.name_max} characters; this has ${name.length}`;
  } else if (!new RegExp(info.name_pattern).test(name)) {
    errors.name = 'lowercase letters, digits and -, starting and ending with a letter or digit';
  } else if (context.taken && Array.from(context.taken).includes(name)) {
    errors.name = `project ${state.project} has a workload named ${name} already: choose another name`;
  }
  switch (state.gpuMode) {
    case 'whole':
      if (b.gpu.max < 1) {
        errors.gpu = 'no node has a GPU: choose No GPU';
      } else if (!wholeIn(state.gpu, 1, b.gpu.max)) {
        errors.gpu = `a whole number of GPUs from 1 to ${b.gpu.max} (${b.gpu.by ?? 'the most on one node'}); for none, choose No GPU`;
      }
      break;
    case 'memory': {
      const text = state.gpuMemory.trim();
      const bytes = parseMemory(text);
      const most = b.gpu_memory.max ? parseMemory(b.gpu_memory.max) : NaN;
      if (!text) {
        errors.gpu_memory = 'required: the GPU memory to hold per device, e.g. 8Gi';
      } else if (isNaN(bytes) || bytes <= 0) {
        errors.gpu_memory = `a memory quantity such as 8Gi or 512Mi; got ${JSON.stringify(text)}`;
      } else if (!isNaN(most) && bytes > most) {
        errors.gpu_memory = `at most ${bytesLabel(most)} (${b.gpu_memory.by ?? 'the largest device'}); got ${bytesLabel(bytes)}`;
      }
      break;
    }
    default:
      break;
  }
  if ((state.gpuMode === 'fraction' || state.gpuMode === 'memory') && !wholeIn(state.gpuDevices, b.gpu_devices.min, b.gpu_devices.max)) {
    errors.gpu_devices = `a whole number of devices from ${b.gpu_devices.min} to ${b.gpu_devices.max}`;
  }
  if (state.gpuMode === 'fraction' && state.dynamic && !(state.gpuLimit >= state.fraction && state.gpuLimit <= b.gpu_limit.max)) {
    errors.gpu_limit = `from the fraction (${state.fraction}) to ${b.gpu_limit.max}`;
  }
  const quantity = (id: FieldId, text: string, parse: (t: string) => number, most: string | null, example: string, show: (v: number) => string, floor: number | null, why = 'the largest node') => {
    const value = text.trim();
    if (!value) {
      return;
    }
    const parsed = parse(value);
    const max = most ? parse(most) : NaN;
    if (isNaN(parsed) || parsed <= 0) {
      errors[id] = `a quantity such as ${example}; got ${JSON.stringify(value)}`;
    } else if (!isNaN(max) && parsed > max) {
      errors[id] = `at most ${show(max)} (${why}); got ${show(parsed)}`;
    } else if (floor !== null && !isNaN(floor) && parsed < floor) {
      errors[id] = 'at least the request';
    }
  };
  const cores = (v: number) => `${Number(v.toFixed(3))} CPU${v === 1 ? '' : 's'}`;
  quantity('cpu', state.cpu, parseCpu, b.cpu.max, '500m or 2', cores, null, b.cpu.by);
  quantity('memory', state.memory, parseMemory, b.memory.max, '4Gi or 512Mi', bytesLabel, null, b.memory.by);
  quantity('cpu_limit', state.cpuLimit, parseCpu, null, '500m or 2', cores, state.cpu.trim() ? parseCpu(state.cpu) : null);
  quantity('memory_limit', state.memoryLimit, parseMemory, null, '4Gi or 512Mi', bytesLabel, state.memory.trim() ? parseMemory(state.memory) : null);
  if (context.localCluster && state.kind !== 'workspace' && !state.command.trim()) {
    errors.command = 'required on the local cluster: it runs this command in the server\u2019s Python environment (it does not run images)';
  }
  const env = parseEnvironment(state.environment);
  if (env.error) {
    errors.environment = env.error;
  }
  const extra = kindFields(info, state.kind);
  if (extra.includes('workers')) {
    if (!wholeIn(state.workers, b.workers.min, b.workers.max)) {
      errors.workers = `a whole number from ${b.workers.min} to ${b.workers.max}`;
    }
    const min = state.minAvailable.trim();
    if (min && !/^\d+$/.test(min)) {
      errors.min_available = `a whole number of pods, or empty for all; got ${JSON.stringify(min)}`;
    } else if (min && (Number(min) < 1 || Number(min) > state.workers + 1)) {
      errors.min_available = `from 1 to ${state.workers + 1} (the master and its workers), or empty for all`;
    }
  }
  if (extra.includes('min_replicas')) {
    if (!wholeIn(state.minReplicas, b.replicas.min, b.replicas.max)) {
      errors.min_replicas = `a whole number from ${b.replicas.min} to ${b.replicas.max}`;
    }
    if (!wholeIn(state.maxReplicas, Math.max(b.replicas.min, state.minReplicas || 0), b.replicas.max)) {
      errors.max_replicas = `a whole number from the min replicas to ${b.replicas.max}`;
    }
  }
  if (extra.includes('backoff_limit') && !wholeIn(state.backoffLimit, b.backoff_limit.min, b.backoff_limit.max)) {
    errors.backoff_limit = `a whole number from ${b.backoff_limit.min} to ${b.backoff_limit.max}`;
  }
  return errors;
}

/** The WorkloadSpec the form submits, or every error the form finds in it (the server checks again). */
export function buildSpec(state: IFormState, info: IFormInfo, context: IBuildContext = {}): IBuilt {
  const errors = checkState(state, info, context);
  const env = parseEnvironment(state.environment);
  const resources: IWorkloadSpec['resources'] = {};
  switch (state.gpuMode) {
    case 'whole':
      resources.gpu = state.gpu;
      break;
    case 'fraction':
      resources.gpu = state.fraction;
      if (state.gpuDevices > 1) {
        resources.gpu_devices = state.gpuDevices;
      }
      if (state.dynamic) {
        resources.gpu_limit = state.gpuLimit;
      }
      break;
    case 'memory':
      resources.gpu_memory = state.gpuMemory.trim();
      if (state.gpuDevices > 1) {
        resources.gpu_devices = state.gpuDevices;
      }
      break;
    default:
      break;
  }
  if (state.cpu.trim()) {
    resources.cpu = state.cpu.trim();
  }
  if (state.memory.trim()) {
    resources.memory = state.memory.trim();
  }
  if (state.cpuLimit.trim()) {
    resources.cpu_limit = state.cpuLimit.trim();
  }
  if (state.memoryLimit.trim()) {
    resources.memory_limit = state.memoryLimit.trim();
  }
  const spec: IWorkloadSpec = {
    name: state.name.trim(),
    project: state.project,
    kind: state.kind,
    resources
  };
  if (state.image.trim()) {
    spec.image = state.image.trim();
  }
  if (state.command.trim()) {
    spec.command = state.command;
  }
  if (Object.keys(env.environment).length) {
    spec.environment = env.environment;
  }
  if (state.nodePools.length) {
    spec.node_pools = [...state.nodePools];
  }
  if (state.workingDir.trim()) {
    spec.working_dir = state.workingDir.trim();
  }
  if (state.pythonEnv.trim()) {
    spec.python_env = state.pythonEnv.trim();
  }
  if (state.dataSources.length) {
    spec.data_sources = [...state.dataSources];
  }
  if (state.credentials.length) {
    spec.credentials = [...state.credentials];
  }
  if (state.priorityClass) {
    spec.priority_class = state.priorityClass;
  }
  if (state.preemptible !== 'default') {
    spec.preemptible = state.preemptible === 'yes';
  }
  const extra = kindFields(info, state.kind);
  if (extra.includes('workers')) {
    spec.workers = state.workers;
    const min = state.minAvailable.trim();
    if (min && /^\d+$/.test(min)) {
      spec.min_available = Number(min);
    }
  }
  if (extra.includes('min_replicas')) {
    spec.min_replicas = state.minReplicas;
    spec.max_replicas = state.maxReplicas;
  }
  if (extra.includes('backoff_limit') && state.backoffLimit > 0) {
    spec.backoff_limit = state.backoffLimit;
  }
  return { spec: Object.keys(errors).length ? null : spec, errors };
}

/** The form field a server error's field path belongs to (null: no field; shown above the form). */
export function formFieldFor(field: string | null | undefined, mode: GpuMode): FieldId | null {
  if (!field) {
    return null;
  }
  const path = field.split('.');
  const head = path[0];
  if (head === 'resources' || head === 'master_resources') {
    switch (path[1]) {
      case 'gpu':
        return mode === 'fraction' ? 'fraction' : 'gpu';
      case 'gpu_memory':
        return 'gpu_memory';
      case 'gpu_devices':
        return 'gpu_devices';
      case 'gpu_limit':
        return 'gpu_limit';
      case 'cpu':
        return 'cpu';
      case 'cpu_limit':
        return 'cpu_limit';
      case 'memory':
        return 'memory';
      case 'memory_limit':
        return 'memory_limit';
      default:
        return mode === 'fraction' ? 'fraction' : mode === 'memory' ? 'gpu_memory' : 'gpu';
    }
  }
  const direct: Record<string, FieldId> = {
    name: 'name',
    project: 'project',
    kind: 'kind',
    image: 'image',
    command: 'command',
    environment: 'environment',
    workers: 'workers',
    min_replicas: 'min_replicas',
    max_replicas: 'max_replicas',
    min_available: 'min_available',
    backoff_limit: 'backoff_limit',
    node_pools: 'node_pools',
    working_dir: 'working_dir',
    python_env: 'python_env',
    data_sources: 'data_sources',
    credentials: 'credentials',
    priority_class: 'priority_class',
    preemptible: 'preemptible'
  };
  return direct[head] ?? null;
}

export interface IPlacedErrors {
  byField: Partial<Record<FieldId, string[]>>;
  /** errors without a form field, and the summary message */
  general: string[];
}

/** Put every error of a server answer beside its field. */
export function placeErrors(body: IErrorBody | null | undefined, mode: GpuMode, fallback = 'The server refused the workload'): IPlacedErrors {
  const out: IPlacedErrors = { byField: {}, general: [] };
  const error = body?.error;
  if (!error) {
    out.general.push(fallback);
    return out;
  }
  const list: IFieldError[] = error.errors && error.errors.length ? error.errors : [error];
  for (const e of list) {
    const id = formFieldFor(e.field, mode);
    if (id) {
      // beside its field a message need not name the field again ("command: required ...")
      const text = e.field && e.message.startsWith(`${e.field}: `) ? e.message.slice(e.field.length + 2) : e.message;
      const messages = (out.byField[id] = out.byField[id] ?? []);
      if (!messages.includes(text)) {
        messages.push(text);
      }
    } else {
      out.general.push(e.message);
    }
  }
  return out;
}
