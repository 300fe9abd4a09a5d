import { fieldsForKind, formToPolicy, inheritedText, IPolicyDoc, IPolicyField, key, placePolicyErrors, policyToForm } from '../logic/policyform';

// as GET policies lists them (models/policy.py field_catalog)
const FIELDS: IPolicyField[] = [{"field": "image", "sort": "text", "kinds": null, "choices": null, "rules": ["required", "can_edit", "allowed"]}, {"field": "resources.gpu", "sort": "number", "kinds": null, "choices": null, "rules": ["required", "can_edit", "min", "max", "step", "allowed"]}, {"field": "resources.gpu_memory", "sort": "memory", "kinds": null, "choices": null, "rules": ["required", "can_edit", "min", "max", "step", "allowed"]}, {"field": "resources.cpu", "sort": "cpu", "kinds": null, "choices": null, "rules": ["required", "can_edit", "min", "max", "step", "allowed"]}, {"field": "resources.cpu_limit", "sort": "cpu", "kinds": null, "choices": null, "rules": ["required", "can_edit", "min", "max", "step", "allowed"]}, {"field": "resources.memory", "sort": "memory", "kinds": null, "choices": null, "rules": ["required", "can_edit", "min", "max", "step", "allowed"]}, {"field": "resources.memory_limit", "sort": "memory", "kinds": null, "choices": null, "rules": ["required", "can_edit", "min", "max", "step", "allowed"]}, {"field": "priority_class", "sort": "choice", "kinds": null, "choices": ["train", "build-preemptible", "build", "inference"], "rules": ["required", "can_edit", "allowed"]}, {"field": "preemptible", "sort": "bool", "kinds": null, "choices": null, "rules": ["required", "can_edit"]}, {"field": "node_pools", "sort": "names", "kinds": null, "choices": null, "rules": ["required", "can_edit", "allowed"]}, {"field": "data_sources", "sort": "names", "kinds": null, "choices": null, "rules": ["required", "can_edit", "allowed"]}, {"field": "working_dir", "sort": "text", "kinds": null, "choices": null, "rules": ["required", "can_edit", "allowed"]}, {"field": "workers", "sort": "int", "kinds": ["distributed"], "choices": null, "rules": ["required", "can_edit", "min", "max", "step", "allowed"]}, {"field": "min_replicas", "sort": "int", "kinds": ["inference"], "choices": null, "rules": ["required", "can_edit", "min", "max", "step", "allowed"]}, {"field": "max_replicas", "sort": "int", "kinds": ["inference"], "choices": null, "rules": ["required", "can_edit", "min", "max", "step", "allowed"]}, {"field": "backoff_limit", "sort": "int", "kinds": ["training", "distributed"], "choices": null, "rules": ["required", "can_edit", "min", "max", "step", "allowed"]}];

describe('the guided policy form', () => {
  it('shows each kind only its fields', () => {
    const training = fieldsForKind(FIELDS, 'training').map(f => f.field);
    expect(training).toContain('backoff_limit');
    expect(training).not.toContain('workers');
    expect(fieldsForKind(FIELDS, 'distributed').map(f => f.field)).toContain('workers');
  });

  it('round-trips a policy through its texts: numbers, quantities, lists, choices, true/false', () => {
    const policy: IPolicyDoc = {
      scope: 'project', name: 'vision', kind: 'training',
      defaults: { 'resources.gpu': 1, 'resources.cpu': '500m', 'resources.memory': '16Gi', node_pools: ['a100', 'default'], preemptible: true, priority_class: 'train', image: 'base:1' },
      rules: {
        'resources.gpu': { min: 0.5, max: 2, step: 0.5 },
        'resources.memory': { max: '64Gi', required: true },
        'resources.cpu': { max: 4 },
        image: { allowed: ['base:1', 'base:2'], can_edit: false },
        node_pools: { allowed: ['a100', 'default'] },
        backoff_limit: { max: 3 }
      }
    };
    const values = policyToForm(policy);
    expect(values[key('resources.gpu', 'max')]).toBe('2');
    expect(values[key('node_pools', 'default')]).toBe('a100, default');
    expect(values[key('image', 'can_edit')]).toBe('true');
    expect(values[key('resources.memory', 'required')]).toBe('true');
    const { body, errors } = formToPolicy(values, FIELDS);
    expect(errors).toEqual({});
    expect(body).toEqual(policy);
    expect(formToPolicy(policyToForm({ scope: 'cluster', kind: 'workspace', defaults: {}, rules: {} }), FIELDS).body).toEqual({ scope: 'cluster', kind: 'workspace', defaults: {}, rules: {} });
  });

  it('finds what it can before sending, keyed as the inputs, and reads only the chosen kind', () => {
    const values = { scope: 'project', name: '', kind: 'training', [key('resources.gpu', 'max')]: 'two', [key('backoff_limit', 'max')]: '1.5', [key('resources.gpu', 'allowed')]: '1, x', [key('workers', 'max')]: '3', [key('preemptible', 'max')]: '3' };
    const { body, errors } = formToPolicy(values, FIELDS);
    expect(errors).toEqual({ name: "required: the project's name", [key('resources.gpu', 'max')]: 'two is not a number', [key('backoff_limit', 'max')]: '1.5 is not a whole number', [key('resources.gpu', 'allowed')]: 'x is not a number' });
    expect(body.rules.workers).toBeUndefined(); // a distributed field: not for training
    expect(body.rules.preemptible).toBeUndefined(); // no max for true/false
  });

  it('says what the wider scopes set, with whose, and places the server errors on their rows', () => {
    const inherited = { policies: ['cluster'], defaults: { 'resources.gpu': 1 }, default_from: { 'resources.gpu': 'cluster' }, rules: { 'resources.gpu': { max: 2, from: ["department 'research'"] }, image: { allowed: ['a', 'b'], can_edit: false, from: ['cluster'] } } };
    expect(inheritedText('resources.gpu', inherited)).toBe("default 1, max 2 (cluster, department 'research')");
    expect(inheritedText('image', inherited)).toBe('one of a, b, fixed (cluster)');
    expect(inheritedText('workers', inherited)).toBe('');
    expect(inheritedText('image', null)).toBe('');
    const placed = placePolicyErrors({ error: { field: 'rules.resources.gpu.max', message: 'first', errors: [
      { field: 'rules.resources.gpu.max', message: "rules.resources.gpu.max: 4 is above the max 2 that the department 'research' policy sets" },
      { field: 'defaults.resources.gpu_memory', message: 'defaults.resources.gpu_memory: bad' },
      { field: 'name', message: 'name: no project' }, { field: null, message: 'something else' }] } }, FIELDS);
    expect(placed.byRow['resources.gpu']).toEqual(["rules.resources.gpu.max: 4 is above the max 2 that the department 'research' policy sets"]);
    expect(placed.byRow['resources.gpu_memory']).toEqual(['defaults.resources.gpu_memory: bad']);
    expect(placed.byRow.name).toEqual(['name: no project']);
    expect(placed.general).toEqual(['something else']);
  });
});
