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

// as the server sends it: the form's defaults and bounds narrowed by the policy (server/form.py)
const narrowed: IFormInfo = {
  ...info,
  defaults: { ...info.defaults, project: 'vision', gpu_mode: 'fraction', fraction: 0.5, cpu: '500m', memory: '4Gi', image: 'base:1', commands: {} },
  bounds: {
    ...info.bounds,
    gpu: { min: 0, max: 2, step: 1, by: 'the cluster policy' },
    fraction: { min: 0.25, max: 0.75, steps: [0.5] },
    memory: { max: '8Gi', by: "the project 'vision' policy" }
  },
  node_pools: ['a100'],
  priority_classes: ['train']
};
const policy: IEffectivePolicy = {
  project: 'vision', kind: 'training', policies: ['cluster', "project 'vision'"],
  defaults: { 'resources.gpu': 0.5, 'resources.cpu': '500m', 'resources.memory': '4Gi', image: 'base:1' },
  rules: { 'resources.gpu': { max: 2, step: 0.5, from: ['cluster'] }, 'resources.memory': { max: '8Gi' } },
  form: narrowed
};

describe('the effective policy in the form', () => {
  it('takes the narrowed defaults and bounds the server sends, keeping its own commands', () => {
    const form = applyPolicy(info, policy);
    expect(form.defaults).toMatchObject({ gpu_mode: 'fraction', fraction: 0.5, cpu: '500m', image: 'base:1', commands: info.defaults.commands });
    expect(form.bounds.gpu.max).toBe(2);
    expect(form.node_pools).toEqual(['a100']);
    expect(applyPolicy(info, null)).toBe(info);
    expect(applyPolicy(info, { ...policy, defaults: {}, rules: {} })).toBe(info); // no policy set: the form as it is
    expect(applyPolicy(info, { ...policy, form: undefined })).toBe(info); // an older server
  });

  it('starts from the policy defaults and refuses what the policy bounds refuse, before asking the server', () => {
    const form = applyPolicy(info, policy);
    const state = initialState(form, 'vision', []);
    expect(buildSpec(state, form).spec!.resources).toEqual({ gpu: 0.5, cpu: '500m', memory: '4Gi' });
    const errors = checkState({ ...state, gpuMode: 'whole', gpu: 3, memory: '10Gi' }, form);
    expect(errors.gpu).toBe('a whole number of GPUs from 1 to 2 (the cluster policy); for none, choose No GPU');
    expect(errors.memory).toBe("at most 8 GiB (the project 'vision' policy); got 10 GiB");
    expect(checkState({ ...state, gpuMode: 'whole', gpu: 3 }, info).gpu).toBeUndefined(); // without the policy: allowed
  });

  it('moves the fields left at the old defaults to the new ones and keeps what the user typed', () => {
    const before = initialState(info, 'vision', []);
    const after = rebaseDefaults({ ...before, memory: '2Gi' }, info, applyPolicy(info, policy));
    expect(after).toMatchObject({ gpuMode: 'fraction', fraction: 0.5, cpu: '500m', memory: '2Gi', image: 'base:1' });
  });
});
