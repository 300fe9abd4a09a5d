import { buildSpec, changeKind, checkState, formFieldFor, initialState, parseCpu, parseEnvironment, placeErrors, snapFraction, suggestName } from '../logic/form';
import { IFormInfo } from '../logic/types';

const info: IFormInfo = {
  kinds: [
    { name: 'workspace', label: 'Workspace', fields: [] },
    { name: 'training', label: 'Training', fields: ['backoff_limit'] },
    { name: 'distributed', label: 'Distributed', fields: ['workers'] },
    { name: 'inference', label: 'Inference', fields: ['min_replicas', 'max_replicas'] }
  ],
  defaults: {
    kind: 'training', project: 'default', gpu_mode: 'whole', gpu: 1, fraction: 0.5, gpu_memory: '12Gi', gpu_devices: 1,
    cpu: '1', memory: '1Gi', image: 'python:3.11', commands: { training: 'python t.py', distributed: 'python d.py', inference: 'serve', workspace: '' },
    workers: 1, min_replicas: 1, max_replicas: 1, backoff_limit: 0
  },
  bounds: {
    gpu: { min: 0, max: 2, step: 1 }, fraction: { min: 0.25, max: 0.75, steps: [0.25, 0.5, 0.75] }, gpu_limit: { min: 0.25, max: 1 },
    gpu_memory: { max: '24Gi' }, gpu_devices: { min: 1, max: 2 }, cpu: { max: '2' }, memory: { max: '24Gi' },
    workers: { min: 1, max: 8 }, replicas: { min: 1, max: 8 }, backoff_limit: { min: 0, max: 10 }
  },
  node_pools: ['default'], name_pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', name_max: 63
};

describe('names', () => {
  it('suggests the first free name of the kind', () => {
    expect(suggestName('training', ['train-1', 'train-2', 'ws-1'])).toBe('train-3');
    expect(suggestName('workspace', [])).toBe('ws-1');
  });
});

describe('form state', () => {
  it('starts from the server defaults', () => {
    const s = initialState(info, 'team-a', ['train-1']);
    expect(s).toMatchObject({ kind: 'training', name: 'train-2', project: 'team-a', gpuMode: 'whole', gpu: 1, command: 'python t.py' });
  });
  it('follows the kind with name and command unless the user changed them', () => {
    const s = initialState(info, null, []);
    const d = changeKind(s, 'distributed', info, []);
    expect(d.name).toBe('ddp-1');
    expect(d.command).toBe('python d.py');
    const custom = changeKind({ ...s, name: 'mine', command: 'echo hi' }, 'inference', info, []);
    expect(custom.name).toBe('mine');
    expect(custom.command).toBe('echo hi');
  });
  it('snaps fractions to the slider steps', () => {
    expect(snapFraction(0.6, [0.25, 0.5, 0.75])).toBe(0.5);
    expect(snapFraction(0.7, [0.25, 0.5, 0.75])).toBe(0.75);
  });
});

describe('buildSpec', () => {
  const base = initialState(info, null, []);
  it('builds whole, fraction (with devices and a limit) and memory requests', () => {
    expect(buildSpec(base, info).spec).toEqual({
      name: 'train-1', project: 'default', kind: 'training', image: 'python:3.11', command: 'python t.py',
      resources: { gpu: 1, cpu: '1', memory: '1Gi' }
    });
    const frac = buildSpec({ ...base, gpuMode: 'fraction', fraction: 0.25, dynamic: true, gpuLimit: 0.75, gpuDevices: 2 }, info).spec!;
    expect(frac.resources).toMatchObject({ gpu: 0.25, gpu_limit: 0.75, gpu_devices: 2 });
    const mem = buildSpec({ ...base, gpuMode: 'memory', gpuMemory: ' 8Gi ' }, info).spec!;
    expect(mem.resources).toMatchObject({ gpu_memory: '8Gi' });
    expect(mem.resources.gpu).toBeUndefined();
    expect(buildSpec({ ...base, gpuMode: 'none' }, info).spec!.resources.gpu).toBeUndefined();
  });
  it('adds the kind\'s own fields, environment and node pools', () => {
    const d = buildSpec({ ...base, kind: 'distributed', workers: 3, environment: 'A=1\n# note\n\nB=x=y', nodePools: ['default'] }, info).spec!;
    expect(d.workers).toBe(3);
    expect(d.environment).toEqual({ A: '1', B: 'x=y' });
    expect(d.node_pools).toEqual(['default']);
    const inf = buildSpec({ ...base, kind: 'inference', minReplicas: 1, maxReplicas: 3 }, info).spec!;
    expect([inf.min_replicas, inf.max_replicas]).toEqual([1, 3]);
    expect(inf.workers).toBeUndefined();
  });
  it('refuses an environment line it cannot read, on the environment field', () => {
    const r = buildSpec({ ...base, environment: 'JUSTANAME' }, info);
    expect(r.spec).toBeNull();
    expect(r.errors.environment).toMatch(/line 1/);
    expect(parseEnvironment('').environment).toEqual({});
  });
});

describe('server errors beside their fields', () => {
  it('maps field paths to form fields', () => {
    expect(formFieldFor('resources.gpu', 'fraction')).toBe('fraction');
    expect(formFieldFor('resources.gpu', 'whole')).toBe('gpu');
    expect(formFieldFor('resources.gpu_limit', 'fraction')).toBe('gpu_limit');
    expect(formFieldFor('environment.1BAD', 'whole')).toBe('environment');
    expect(formFieldFor('node_pools.0', 'whole')).toBe('node_pools');
    expect(formFieldFor(null, 'whole')).toBeNull();
    expect(formFieldFor('something_else', 'whole')).toBeNull();
  });
  it('places each of several errors, and keeps the rest for the top of the form', () => {
    const placed = placeErrors({
      error: {
        field: 'name', message: 'name: bad',
        errors: [{ field: 'name', message: 'name: bad' }, { field: 'resources.gpu', message: 'resources.gpu: 1.5' }, { field: null, message: 'general' }]
      }
    }, 'whole');
    // beside its field, a message does not repeat the field's path
    expect(placed.byField).toEqual({ name: ['bad'], gpu: ['1.5'] });
    expect(placed.general).toEqual(['general']);
    expect(placeErrors(null, 'whole').general.length).toBe(1);
  });
});

describe('the CLI options in the form', () => {
  it('sends limits, priority, preemptible, dirs, data sources and credentials when given', () => {
    const s = {
      ...initialState(info, null, []),
      cpuLimit: '2', memoryLimit: '2Gi', priorityClass: 'build', preemptible: 'no' as const,
      workingDir: '/work', pythonEnv: '/envs/torch', dataSources: ['imagenet'], credentials: ['hf']
    };
    const spec = buildSpec(s, info).spec!;
    expect(spec.resources).toMatchObject({ cpu_limit: '2', memory_limit: '2Gi' });
    expect(spec).toMatchObject({ priority_class: 'build', preemptible: false, working_dir: '/work', python_env: '/envs/torch', data_sources: ['imagenet'], credentials: ['hf'] });
  });

  it('leaves them out when unset', () => {
    const spec = buildSpec(initialState(info, null, []), info).spec!;
    for (const key of ['priority_class', 'preemptible', 'working_dir', 'python_env', 'data_sources', 'credentials', 'min_available']) {
      expect(spec).not.toHaveProperty(key);
    }
  });

  it('sends min_available for distributed only, and checks it is a number', () => {
    const d = { ...changeKind(initialState(info, null, []), 'distributed', info, []), workers: 3, minAvailable: '2' };
    expect(buildSpec(d, info).spec).toMatchObject({ workers: 3, min_available: 2 });
    expect(buildSpec({ ...d, minAvailable: 'two' }, info).errors.min_available).toContain('whole number');
    expect(buildSpec({ ...initialState(info, null, []), minAvailable: '2' }, info).spec).not.toHaveProperty('min_available');
  });

  it('maps the new fields\u2019 server errors to them', () => {
    expect(formFieldFor('resources.cpu_limit', 'whole')).toBe('cpu_limit');
    expect(formFieldFor('min_available', 'whole')).toBe('min_available');
    expect(formFieldFor('data_sources', 'whole')).toBe('data_sources');
    expect(formFieldFor('priority_class', 'whole')).toBe('priority_class');
  });
});

describe('the form checks the bounds it shows, every field at once', () => {
  const base = initialState(info, null, []);
  it('refuses a GPU count no node has, and an empty or zero count in Whole GPUs mode', () => {
    for (const gpu of [3, 5, 9, 0, NaN, 1.5]) {
      const r = buildSpec({ ...base, gpuMode: 'whole', gpu }, info);
      expect(r.spec).toBeNull();
      expect(r.errors.gpu).toBe('a whole number of GPUs from 1 to 2 (the most on one node); for none, choose No GPU');
    }
    expect(buildSpec({ ...base, gpuMode: 'whole', gpu: 2 }, info).spec!.resources.gpu).toBe(2);
    const none = { ...info, bounds: { ...info.bounds, gpu: { min: 0, max: 0, step: 1 } } };
    expect(buildSpec(base, none).errors.gpu).toBe('no node has a GPU: choose No GPU');
  });
  it('refuses CPU, memory and GPU memory above the largest node or device', () => {
    const r = buildSpec({ ...base, cpu: '64', memory: '1Ti' }, info);
    expect(r.errors).toEqual({ cpu: 'at most 2 CPUs (the largest node); got 64 CPUs', memory: 'at most 24 GiB (the largest node); got 1 TiB' });
    const g = buildSpec({ ...base, gpuMode: 'memory', gpuMemory: '100Gi' }, info);
    expect(g.errors.gpu_memory).toBe('at most 24 GiB (the largest device); got 100 GiB');
    expect(buildSpec({ ...base, gpuMode: 'memory', gpuMemory: '' }, info).errors.gpu_memory).toMatch(/^required/);
    expect(buildSpec({ ...base, cpu: '1500m', memory: '24Gi' }, info).spec).not.toBeNull();
    expect(buildSpec({ ...base, cpu: '1', cpuLimit: '500m' }, info).errors.cpu_limit).toBe('at least the request');
    expect(parseCpu('250m')).toBe(0.25);
    expect(parseCpu('2 apples')).toBeNaN();
  });
  it('shows every error on the first Submit, without the field path in the message', () => {
    const r = buildSpec(
      { ...base, name: 'Not_A_Name', gpuMode: 'memory', gpuMemory: '12 apples', cpu: '64', memory: '1Ti', command: '', environment: 'JUSTANAME' },
      info,
      { localCluster: true }
    );
    expect(r.spec).toBeNull();
    expect(Object.keys(r.errors).sort()).toEqual(['command', 'cpu', 'environment', 'gpu_memory', 'memory', 'name']);
    for (const [field, message] of Object.entries(r.errors)) {
      expect(message.startsWith(`${field}:`)).toBe(false);
    }
    expect(r.errors.command).toBe('required on the local cluster: it runs this command in the server\u2019s Python environment (it does not run images)');
  });
  it('asks for a command on the local cluster only, and never for a workspace', () => {
    expect(checkState({ ...base, command: '' }, info, {}).command).toBeUndefined();
    expect(checkState({ ...changeKind(base, 'workspace', info, []), command: '' }, info, { localCluster: true }).command).toBeUndefined();
  });
  it('refuses a name the project has, or one that is not a DNS label', () => {
    expect(checkState({ ...base, name: 'train-1' }, info, { taken: ['train-1'] }).name).toMatch(/already/);
    expect(checkState({ ...base, name: '-x' }, info).name).toMatch(/lowercase/);
    expect(checkState({ ...base, name: '' }, info).name).toMatch(/^required/);
  });
  it('checks workers and replicas against their bounds', () => {
    const d = changeKind(base, 'distributed', info, []);
    expect(checkState({ ...d, workers: 9 }, info).workers).toBe('a whole number from 1 to 8');
    expect(checkState({ ...d, workers: 2, minAvailable: '4' }, info).min_available).toMatch(/^from 1 to 3/);
    const i = changeKind(base, 'inference', info, []);
    expect(checkState({ ...i, minReplicas: 3, maxReplicas: 2 }, info).max_replicas).toMatch(/min replicas/);
  });
});
