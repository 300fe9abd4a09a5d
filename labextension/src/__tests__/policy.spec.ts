import { buildSpec, checkState, initialState } from '../logic/form';
import { applyPolicy, IEffectivePolicy, rebaseDefaults } from '../logic/policy';
import { IFormInfo } from '../logic/types';

const info: IFormInfo = {
  kinds: [
    { name: 'training', label: 'Training', fields: ['backoff_limit'] },
    { name: 'distributed', label: 'Distributed', fields: ['workers'] }
  ],
  defaults: {
    kind: 'training', project: 'default', gpu_mode: 'whole', gpu: 1, fraction: 0.5, gpu_memory: '12Gi', gpu_devices: 1,
    cpu: '100m', memory: '128Mi', image: '', commands: { training: 'python t.py', distributed: 'python d.py' },
    workers: 1, min_replicas: 1, max_replicas: 1, backoff_limit: 0
  },
  bounds: {
    gpu: { min: 0, max: 4, step: 1 }, fraction: { min: 0.25, max: 0.75, steps: [0.25, 0.5, 0.75] }, gpu_limit: { min: 0.25, max: 1 },
    gpu_memory: { max: '24Gi' }, gpu_devices: { min: 1, max: 4 }, cpu: { max: '16' }, memory: { max: '64Gi' },
    workers: { min: 1, max: 16 }, replicas: { min: 1, max: 16 }, backoff_limit: { min: 0, max: 10 }
  },
  node_pools: ['a100', 'default'], priority_classes: ['train', 'build-preemptible', 'build', 'inference'],
  name_pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', name_max: 63
};

const policy: IEffectivePolicy = {
  project: 'vision', kind: 'training', policies: ['cluster', "project 'vision'"],
  defaults: { 'resources.gpu': 0.5, 'resources.cpu': '500m', 'resources.memory': '4Gi', image: 'base:1' },
  rules: {
    'resources.gpu': { max: 2, step: 0.5, from: ['cluster'] },
    'resources.memory': { max: '8Gi' },
    'resources.cpu': { max: 32 },
    node_pools: { allowed: ['a100'] },
    priority_class: { allowed: ['train'] }
  }
};

describe('the effective policy in the form', () => {
  it('takes the policy defaults and narrows the bounds, never widening them', () => {
    const form = applyPolicy(info, policy);
    expect(form.defaults).toMatchObject({ gpu_mode: 'fraction', fraction: 0.5, cpu: '500m', memory: '4Gi', image: 'base:1' });
    expect(form.bounds.gpu.max).toBe(2);
    expect(form.bounds.fraction.steps).toEqual([0.5]); // 0.25 and 0.75 are not multiples of the step
    expect(form.bounds.memory.max).toBe('8Gi');
    expect(form.bounds.cpu.max).toBe('16'); // the policy's 32 is more than a node has: the node's bound stays
    expect(form.node_pools).toEqual(['a100']);
    expect(form.priority_classes).toEqual(['train']);
    expect(applyPolicy(info, null)).toBe(info);
    expect(applyPolicy(info, { project: 'default', kind: 'training', policies: [], defaults: {}, rules: {} })).toBe(info);
    expect(info.bounds.gpu.max).toBe(4); // the form's own info is not changed
  });

  it('starts from the policy defaults and refuses what the policy bounds refuse, before asking the server', () => {
    const form = applyPolicy(info, policy);
    const state = initialState(form, 'vision', []);
    expect(buildSpec(state, form).spec!.resources).toEqual({ gpu: 0.5, cpu: '500m', memory: '4Gi' });
    const errors = checkState({ ...state, gpuMode: 'whole', gpu: 3, memory: '10Gi' }, form);
    expect(errors.gpu).toContain('from 1 to 2');
    expect(errors.memory).toContain('at most 8');
    expect(checkState({ ...state, gpuMode: 'whole', gpu: 3 }, info).gpu).toBeUndefined(); // without the policy: allowed
  });

  it('moves the fields left at the old defaults to the new ones and keeps what the user typed', () => {
    const before = initialState(info, 'vision', []);
    const after = rebaseDefaults({ ...before, memory: '2Gi' }, info, applyPolicy(info, policy));
    expect(after).toMatchObject({ gpuMode: 'fraction', fraction: 0.5, cpu: '500m', memory: '2Gi', image: 'base:1' });
  });
});
