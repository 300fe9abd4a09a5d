import { cloneName, stateFromSpec } from '../logic/clone';
import { buildSpec } from '../logic/form';
import { IFormInfo, IWorkloadSpec } from '../logic/types';

// a cluster with room for everything below: the clone's checks pass, so buildSpec returns its spec
const info: IFormInfo = {
  kinds: [
    { name: 'workspace', label: 'Workspace', fields: [] },
    { name: 'training', label: 'Training', fields: ['backoff_limit'] },
    { name: 'distributed', label: 'Distributed', fields: ['workers'] },
    { name: 'inference', label: 'Inference', fields: ['min_replicas', 'max_replicas'] }
  ],
  defaults: {
    kind: 'training', project: 'default', gpu_mode: 'whole', gpu: 1, fraction: 0.5, gpu_memory: null, gpu_devices: 1,
    cpu: '2', memory: '8Gi', image: '', commands: { training: 'python train.py', distributed: 'torchrun t.py', inference: 'serve', workspace: '' },
    workers: 1, min_replicas: 1, max_replicas: 1, backoff_limit: 0
  },
  bounds: {
    gpu: { min: 0, max: 8, step: 1 }, fraction: { min: 0.25, max: 0.75, steps: [0.25, 0.5, 0.75] }, gpu_limit: { min: 0.25, max: 1 },
    gpu_memory: { max: '80Gi' }, gpu_devices: { min: 1, max: 8 }, cpu: { max: '64' }, memory: { max: '512Gi' },
    workers: { min: 1, max: 16 }, replicas: { min: 1, max: 16 }, backoff_limit: { min: 0, max: 10 }
  },
  node_pools: ['a100', 'default'], name_pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', name_max: 63
};

describe('cloneName', () => {
  it('counts on from the name, past the names taken', () => {
    expect(cloneName('train-1', ['train-1'])).toBe('train-2');
    expect(cloneName('train-1', ['train-1', 'train-2', 'train-3'])).toBe('train-4');
    expect(cloneName('bert', ['bert'])).toBe('bert-2');
  });
  it('stays within the longest name', () => {
    const long = 'a'.repeat(63);
    const clone = cloneName(long, [long]);
    expect(clone.length).toBeLessThanOrEqual(63);
    expect(clone.endsWith('-2')).toBe(true);
  });
});

describe('stateFromSpec', () => {
  // what the form would submit again: the same spec under the clone's name
  const again = (spec: IWorkloadSpec) => {
    const state = stateFromSpec(spec, info, [spec.name]);
    const built = buildSpec(state, info, { taken: [spec.name] });
    expect(built.errors).toEqual({});
    return built.spec!;
  };

  it('a fraction with a burst limit over two devices, its data, pools and environment', () => {
    const spec: IWorkloadSpec = {
      name: 'train-1', project: 'team-a', kind: 'training',
      resources: { gpu: 0.25, gpu_limit: 0.75, gpu_devices: 2, cpu: '500m', memory: '4Gi', memory_limit: '8Gi' },
      command: 'python train.py --epochs 3', environment: { LR: '0.1', NAME: 'a b' }, node_pools: ['a100'],
      data_sources: ['imagenet'], credentials: ['hf-token'], working_dir: 'work', priority_class: 'build-preemptible', backoff_limit: 2
    };
    expect(again(spec)).toEqual({ ...spec, name: 'train-2' });
  });

  it('what the server answers (defaults filled in) comes back as the choice it was', () => {
    const server: IWorkloadSpec = {
      name: 'ws-1', project: 'default', kind: 'workspace', priority_class: 'build', preemptible: false,
      resources: { gpu: 1, gpu_memory: null, gpu_devices: null, gpu_limit: null, cpu: '0', cpu_limit: null, memory: '0', memory_limit: null },
      image: null, command: null, environment: {}, node_pools: [], data_sources: [], credentials: []
    };
    const state = stateFromSpec(server, info, ['ws-1']);
    expect(state).toMatchObject({ gpuMode: 'whole', gpu: 1, cpu: '', memory: '', priorityClass: '', preemptible: 'default', command: '' });
    expect(again(server)).toEqual({ name: 'ws-2', project: 'default', kind: 'workspace', resources: { gpu: 1 } });
  });

  it('GPU memory, a distributed gang minimum, an inference range and a non-preemptible choice', () => {
    const ddp: IWorkloadSpec = { name: 'ddp-1', project: 'p', kind: 'distributed', workers: 3, min_available: 2, master: true, resources: { gpu_memory: '20Gi' }, command: ['torchrun', 'train.py'], preemptible: false };
    expect(again(ddp)).toEqual({ name: 'ddp-2', project: 'p', kind: 'distributed', workers: 3, min_available: 2, resources: { gpu_memory: '20Gi' }, command: 'torchrun train.py', preemptible: false });
    const serve: IWorkloadSpec = { name: 'serve-1', project: 'p', kind: 'inference', min_replicas: 2, max_replicas: 4, resources: {}, command: 'serve' };
    expect(again(serve)).toEqual({ ...serve, name: 'serve-2' });
  });
});
