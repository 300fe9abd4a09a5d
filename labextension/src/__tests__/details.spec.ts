import { commandText, eventClass, latestEvents, podRow, podsText, priorityText, resourcesText, specRows } from '../logic/details';
import { IWorkload } from '../logic/types';

function workload(spec: Partial<IWorkload['spec']>, status: Partial<IWorkload['status']> = {}): IWorkload {
  return {
    uid: 'u-1',
    spec: { name: 'bert', project: 'default', kind: 'training', resources: { gpu: 0.5, cpu: '500m', memory: '4Gi' }, ...spec },
    status: { phase: 'Running', pending_reason: null, message: null, pods: [], url: null, submitted_at: null, started_at: null, finished_at: null, ...status },
    submitted_by: 'alice'
  };
}

describe('details', () => {
  it('says the resources of a pod as people say them', () => {
    expect(resourcesText({ gpu: 0.5, cpu: '500m', cpu_limit: '2', memory: '4Gi' })).toBe('0.5 GPU · CPU 500m (limit 2) · memory 4Gi');
    expect(resourcesText({ gpu_memory: '8Gi' })).toBe('8Gi GPU memory');
    expect(resourcesText({})).toBe('no GPU');
  });

  it('says priority and preemptibility', () => {
    expect(priorityText(null, null)).toBe('by kind');
    expect(priorityText('build', false)).toBe('build, not preemptible');
    expect(priorityText(undefined, true)).toBe('by kind, preemptible');
  });

  it('quotes an exec-form command', () => {
    expect(commandText(['python', 'train.py', '--msg', "it's"])).toBe(`python train.py --msg "it's"`);
    expect(commandText('echo hi > out')).toBe('echo hi > out');
    expect(commandText(null)).toBe('');
  });

  it('counts the pods of distributed and inference workloads', () => {
    expect(podsText(workload({ kind: 'distributed', workers: 3 }))).toBe('4 (a master and 3 workers), all start together');
    expect(podsText(workload({ kind: 'distributed', workers: 3, min_available: 2 }))).toBe('4 (a master and 3 workers), at least 2 start together');
    expect(podsText(workload({ kind: 'inference', min_replicas: 1, max_replicas: 4 }))).toBe('1 to 4 replicas (scaled on load)');
    expect(podsText(workload({}))).toBeNull();
  });

  it('lists the spec like runai describe, environment by name only', () => {
    const rows = specRows(
      workload({
        image: 'python:3.11',
        command: 'python train.py',
        environment: { EPOCHS: '3', SECRETISH: 'value-not-shown' },
        node_pools: ['a100', 'default'],
        data_sources: ['imagenet'],
        credentials: ['hf'],
        priority_class: 'train',
        preemptible: true,
        working_dir: '/work'
      }),
      Date.parse('2024-01-01T00:00:00Z')
    );
    const byKey: Record<string, string> = {};
    rows.forEach(r => (byKey[r.key] = r.value));
    expect(byKey.resources).toBe('0.5 GPU · CPU 500m · memory 4Gi per pod');
    expect(byKey.environment).toBe('EPOCHS, SECRETISH');
    expect(JSON.stringify(rows)).not.toContain('value-not-shown');
    expect(byKey.node_pools).toBe('a100 → default');
    expect(byKey.data_sources).toBe('imagenet');
    expect(byKey.credentials).toBe('hf');
    expect(byKey.priority).toBe('train, preemptible');
    expect(byKey.working_dir).toBe('/work');
    expect(byKey.python_env).toBeUndefined();
    expect(rows.map(r => r.key).slice(0, 2)).toEqual(['kind', 'project']);
  });

  it('describes a pod: node, devices and share', () => {
    const base = { name: 'bert-0', index: 0, phase: 'Running', node: 'box', started_at: null, finished_at: null, message: null };
    expect(podRow({ ...base, devices: [1], fraction: 0.5, gpu_memory: null })).toMatchObject({ node: 'box', devices: 'GPU 1', share: '0.5 of a GPU', started: '—' });
    expect(podRow({ ...base, devices: [0, 1], fraction: null, gpu_memory: null }).share).toBe('2 whole GPUs');
    expect(podRow({ ...base, devices: [0], fraction: null, gpu_memory: '8Gi' }).share).toBe('8Gi GPU memory');
    expect(podRow({ ...base, node: null, devices: [], fraction: null, gpu_memory: null })).toMatchObject({ node: '—', devices: '—', share: '—' });
  });

  it('shows the latest events first', () => {
    const e = (id: number, type: string) => ({ id, at: '2024-01-01T00:00:00Z', type, project: 'default', workload: 'bert', pod: null, message: type });
    expect(latestEvents([e(1, 'Submitted'), e(3, 'Started'), e(2, 'Scheduled')], 2).map(x => x.id)).toEqual([3, 2]);
    expect(latestEvents(undefined)).toEqual([]);
    expect(eventClass('Failed')).toBe('warn');
    expect(eventClass('Started')).toBe('good');
    expect(eventClass('Submitted')).toBe('plain');
  });
});
