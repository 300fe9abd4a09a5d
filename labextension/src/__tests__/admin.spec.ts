import { auditChanges, compactPolicy, bindingBody, bindingLabel, parseSelector, placeAdminErrors, poolBody, poolForm, queueBody, queueForm, queueSummary, IQueue } from '../logic/admin';

const vision: IQueue = {
  name: 'vision',
  department: 'research',
  priority: 100,
  deserved: { gpu: 2, cpu: '0', memory: '0' },
  limit: { gpu: null, cpu: null, memory: null },
  over_quota_weight: 1,
  node_pools: { a100: { deserved: { gpu: 1 } } }
};

describe('queueBody', () => {
  it('creates a project from what was typed, numbers as numbers and the rest for the server to judge', () => {
    const values = { ...queueForm(null, 'research'), name: ' cats ', 'deserved.gpu': '1.5', 'deserved.memory': '64Gi', 'limit.gpu': 'four', priority: '90' };
    const built = queueBody(values, null, true);
    expect(built.errors).toEqual({});
    expect(built.body).toEqual({ name: 'cats', department: 'research', deserved: { gpu: 1.5, memory: '64Gi' }, limit: { gpu: 'four' }, priority: 90 });
  });
  it('a change sends only what changed; an emptied limit is unlimited; a pool removed is null', () => {
    const before = queueForm(vision);
    const values = { ...before, 'deserved.gpu': '3', 'limit.gpu': '', node_pools: '{"h100": {"deserved": {"gpu": 2}}}' };
    expect(queueBody(values, before, true).body).toEqual({ deserved: { gpu: 3 }, node_pools: { h100: { deserved: { gpu: 2 } }, a100: null } });
    const limited = queueForm({ ...vision, limit: { gpu: 4, cpu: null, memory: null } });
    expect(queueBody({ ...limited, 'limit.gpu': '' }, limited, true).body).toEqual({ limit: { gpu: null } });
  });
  it('an unchanged form sends nothing and a department has no department field', () => {
    const before = queueForm(vision);
    expect(queueBody({ ...before }, before, true).body).toEqual({});
    expect(queueBody({ ...queueForm(null, 'x'), name: 'd' }, null, false).body).toEqual({ name: 'd' });
  });
  it('scheduling rules merge kind by kind: a kind removed is sent as null', () => {
    const before = queueForm({ ...vision, rules: { training: { max_duration: '8h' }, workspace: { idle_gpu_timeout: '30m' } } });
    const values = { ...before, rules: '{"training": {"max_duration": "4h"}}' };
    expect(queueBody(values, before, true).body).toEqual({ rules: { training: { max_duration: '4h' }, workspace: null } });
  });
  it('shows rules without their unset values, and a rule removed is sent as null', () => {
    const before = queueForm({ ...vision, rules: { training: { max_duration: 28800, idle_gpu_timeout: null, node_pools: ['a100'] } } });
    expect(before.rules).toBe('{"training":{"max_duration":28800,"node_pools":["a100"]}}');
    const values = { ...before, rules: '{"training": {"node_pools": ["a100"]}}' };
    expect(queueBody(values, before, true).body).toEqual({ rules: { training: { node_pools: ['a100'], max_duration: null } } });
  });
  it('per-pool quotas that are not a JSON object are refused before sending, naming the field', () => {
    expect(queueBody({ ...queueForm(vision), node_pools: '{a100' }, queueForm(vision), true).errors.node_pools).toMatch(/^not JSON/);
    expect(queueBody({ ...queueForm(null), name: 'p', node_pools: '[1]' }, null, true).errors.node_pools).toBe('a JSON object ({...})');
  });
});

describe('node pools', () => {
  it('parses the label selector one key=value a line or by commas', () => {
    expect(parseSelector('a=b\n c = d ,')).toEqual({ a: 'b', c: 'd' });
    expect(parseSelector('gpu')).toBe('key=value, one a line; got "gpu"');
  });
  it('round-trips a pool and sends only a changed placement', () => {
    const pool = { name: 'a100', label_selector: { gpu: 'a100' }, gpu_placement: 'binpack', cpu_placement: 'binpack', device_placement: 'pack' };
    const before = poolForm(pool);
    expect(before.label_selector).toBe('gpu=a100');
    expect(poolBody({ ...before, gpu_placement: 'spread' }, before).body).toEqual({ gpu_placement: 'spread' });
    expect(poolBody({ ...poolForm(null), name: 'p' }, null).body).toEqual({ name: 'p', label_selector: {}, gpu_placement: 'fragmentation-aware', cpu_placement: 'binpack', device_placement: 'pack' });
  });
});

describe('placeAdminErrors', () => {
  it('puts every error beside its field at once, without repeating the field path', () => {
    const placed = placeAdminErrors(
      {
        error: {
          field: 'name',
          message: 'name: must be a DNS-1123 label',
          errors: [
            { field: 'name', message: 'name: must be a DNS-1123 label' },
            { field: 'deserved.gpu', message: 'deserved.gpu: must be a number of devices; got -1' },
            { field: 'node_pools.a100.limit.gpu', message: 'node_pools.a100.limit.gpu: must be at least deserved.gpu (2)' },
            { field: 'rules', message: 'rules: something else' }
          ]
        }
      },
      ['name', 'deserved.gpu', 'node_pools']
    );
    expect(placed.byField).toEqual({
      name: ['must be a DNS-1123 label'],
      'deserved.gpu': ['must be a number of devices; got -1'],
      node_pools: ['a100.limit.gpu: must be at least deserved.gpu (2)']
    });
    expect(placed.general).toEqual(['rules: something else']);
  });
  it('puts a binding error beside the grant form field and says something when the body is not an error', () => {
    const placed = placeAdminErrors({ error: { field: 'user', message: 'user: give exactly one of user and group' } }, ['role', 'name', 'scope_name'], 'x', true);
    expect(placed.byField).toEqual({ name: ['give exactly one of user and group'] });
    expect(placeAdminErrors(null, ['name'], 'The server refused it').general).toEqual(['The server refused it']);
  });
});

describe('bindings', () => {
  it('builds a grant for a user or group on the cluster, a department or a project', () => {
    expect(bindingBody({ role: 'researcher', subject: 'group', name: ' cat-people ', scope: 'project', scope_name: 'cats' })).toEqual({ role: 'researcher', group: 'cat-people', project: 'cats' });
    expect(bindingBody({ role: 'admin', subject: 'user', name: 'ada', scope: 'cluster', scope_name: 'ignored' })).toEqual({ role: 'admin', user: 'ada' });
    expect(bindingLabel({ id: 1, source: 'store', role: 'viewer', user: 'vic', department: 'research' })).toBe('viewer · user vic · on department research');
  });
});

describe('auditChanges and queueSummary', () => {
  it('tells what an update changed, value by value, and nothing for a create', () => {
    const before = { ...vision };
    const after = { ...vision, priority: 5, deserved: { ...vision.deserved, gpu: 3 }, node_pools: {} };
    const entry = { id: 2, at: 't', user: 'ada', action: 'update', kind: 'project', name: 'vision', before, after };
    expect(auditChanges(entry)).toEqual(['deserved.gpu 2 -> 3', 'node_pools none -> {}', 'node_pools.a100.deserved.gpu 1 -> none', 'priority 100 -> 5']);
    expect(auditChanges({ ...entry, action: 'create', before: null })).toEqual([]);
    const many = { ...entry, before: { a: 1, b: 1, c: 1 }, after: { a: 2, b: 2, c: 2 } };
    expect(auditChanges(many, 2)).toEqual(['a 1 -> 2', 'b 1 -> 2', 'and 1 more']);
  });
  it('sums up a queue in one line', () => {
    expect(queueSummary(vision)).toBe('2 GPUs deserved · no GPU limit · weight 1 · priority 100 · pools: a100');
    expect(queueSummary({ ...vision, limit: { ...vision.limit, gpu: 6 }, node_pools: {} })).toBe('2 GPUs deserved · GPU limit 6 · weight 1 · priority 100');
  });
});

describe('compactPolicy', () => {
  it('drops unset rule bounds at every depth and keeps false and 0', () => {
    const p = { scope: 'cluster', name: null, rules: { 'resources.gpu': { required: null, min: 0, max: 1, can_edit: false } }, defaults: {} };
    expect(compactPolicy(p)).toEqual({ scope: 'cluster', rules: { 'resources.gpu': { min: 0, max: 1, can_edit: false } }, defaults: {} });
  });
});
