import { availableActions, explainPending, filterWorkloads, openUrl, restoredFilter, sortWorkloads, statusCounts } from '../logic/workloads';
import { IWorkload } from '../logic/types';

function wl(name: string, phase: string, extra: any = {}): IWorkload {
  return {
    uid: name,
    spec: { name, project: extra.project ?? 'default', kind: extra.kind ?? 'training', resources: { gpu: 1 } },
    status: {
      phase, pending_reason: null, message: null, url: extra.url ?? null,
      pods: [{ name: `${name}-0`, index: 0, phase, node: null, devices: [], fraction: null, gpu_memory: null, started_at: extra.started ?? null, finished_at: null, message: null }],
      submitted_at: '2026-01-01T00:00:00Z', started_at: extra.started ?? null, finished_at: extra.finished ?? null
    }
  } as IWorkload;
}

describe('explainPending', () => {
  it('puts a fraction that does not fit in plain words', () => {
    const e = explainPending('pod default/big-0 needs 0.75 of a GPU; the largest free fraction on one device is 0.50');
    expect(e.summary).toBe('Waiting for room on a GPU');
    expect(e.details).toEqual(['Needs 0.75 of a GPU', 'The largest free fraction on one device is 0.50']);
  });
  it('says a full cluster plainly, and reads per-pool reasons by what they say', () => {
    expect(explainPending('pod default/f-0 needs 0.5 of a GPU; every GPU is fully allocated').summary).toBe(
      'Waiting for room on a GPU'
    );
    expect(explainPending('pod default/w-0 needs 2 whole GPUs on one node; no GPU is idle').summary).toBe(
      'Waiting for free GPUs'
    );
    const pooled = explainPending(
      "node pool fast: project 'team' limit: 1 GPU in use + 1 GPU requested > limit of 1 GPU"
    );
    expect(pooled.summary).toBe("Over the project's limit");
  });
  it('recognises whole GPUs, quota, gangs and node pools', () => {
    expect(explainPending('pod default/x-0 needs 2 whole GPUs on one node; the most idle GPUs on one node is 1').summary).toBe('Waiting for free GPUs');
    expect(explainPending("non-preemptible workloads run only within deserved quota: project 'a' has 1 GPU").summary).toBe("Waiting for the project's quota");
    const gang = explainPending('all 3 pods must start together and only 1 fits now; pod default/d-1 needs 1 whole GPU on one node; the most idle GPUs on one node is 0');
    expect(gang.summary).toBe('Waiting until all its pods fit at once');
    expect(gang.details[0]).toBe('All 3 pods must start together and only 1 fits now');
    // the scheduler's own words (no "only 0 fit"), without the pod's name
    expect(explainPending('all 4 pods must start together and none of them fits now; pod default/d-0 needs 1 whole GPU on one node').details).toEqual(
      ['All 4 pods must start together and none of them fits now', 'Needs 1 whole GPU on one node']
    );
    expect(explainPending('all 4 pods must start together and only 2 fit now; pod default/d-2 needs 1 whole GPU on one node').details[0]).toBe(
      'All 4 pods must start together and only 2 fit now'
    );
    expect(explainPending('no node matches the workload\'s node pools or node affinity in node pool a100').summary).toBe('No node in the chosen node pools');
  });
  it('says a placed workspace is starting until its server answers', () => {
    const e = explainPending('starting: waiting for the server to answer');
    expect(e.summary).toBe('Starting: its server does not answer yet');
    // not the scheduler's words again under the summary, but what it waits for
    expect(e.details).toEqual(['Its pods run; it turns Running once its server answers on $PORT']);
  });
  it('names minimum-runtime protection rather than a full cluster', () => {
    expect(explainPending('pod default/t-0 needs 1 whole GPU on one node; no GPU is idle; 1 GPU is held by pods protected by their minimum runtime for another 40 s').summary).toBe(
      'Waiting for pods protected by their minimum runtime'
    );
  });
  it('says a workload without a reason yet is queued', () => {
    expect(explainPending(null).summary).toMatch(/Queued/);
  });
});

describe('filters', () => {
  const list = [
    wl('a', 'Running'),
    wl('b', 'Pending', { kind: 'workspace' }),
    wl('c', 'Succeeded', { finished: '2026-01-01T01:00:00Z' }),
    wl('d', 'Failed', { finished: '2026-01-01T02:00:00Z' }),
    wl('e', 'Running', { project: 'other' })
  ];
  it('filters by project, status, kind and text', () => {
    const base = { project: 'default', status: 'all' as const, kind: 'all', text: '' };
    expect(filterWorkloads(list, base).map(w => w.spec.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(filterWorkloads(list, { ...base, status: 'active' }).map(w => w.spec.name)).toEqual(['a', 'b']);
    expect(filterWorkloads(list, { ...base, status: 'finished' }).map(w => w.spec.name)).toEqual(['c', 'd']);
    expect(filterWorkloads(list, { ...base, kind: 'workspace' }).map(w => w.spec.name)).toEqual(['b']);
    expect(filterWorkloads(list, { ...base, project: null, text: 'E' }).map(w => w.spec.name)).toEqual(['e']);
  });
  it('counts per status and sorts finished ones newest first after the active ones', () => {
    expect(statusCounts(list).finished).toBe(2);
    expect(statusCounts(list).failed).toBe(1);
    expect(sortWorkloads(list).map(w => w.spec.name)).toEqual(['a', 'b', 'e', 'd', 'c']);
  });
});

describe('actions', () => {
  it('offers stop while active, resume when finished, logs once started, open for running workspaces', () => {
    expect(availableActions(wl('a', 'Pending'))).toMatchObject({ stop: true, resume: false, logs: false, open: false });
    expect(availableActions(wl('a', 'Running', { started: 'x' }))).toMatchObject({ stop: true, logs: true });
    expect(availableActions(wl('a', 'Stopped', { started: 'x' }))).toMatchObject({ stop: false, resume: true, delete: true });
    const ws = wl('w', 'Running', { kind: 'workspace', url: '/runai/proxy/default/w/' });
    expect(openUrl(ws)).toBe('/runai/proxy/default/w/');
    expect(availableActions(ws).open).toBe(true);
    expect(openUrl(wl('t', 'Running', { url: '/x' }))).toBeNull();
    expect(openUrl(wl('w', 'Pending', { kind: 'workspace', url: '/x' }))).toBeNull();
  });
});

describe('restoredFilter', () => {
  const current = { project: null, status: 'all' as const, kind: 'all', text: '' };
  it('takes back a saved project and filters', () => {
    expect(restoredFilter(current, { project: '*', status: 'finished', kind: 'training', text: 'kept' })).toEqual({
      project: '*', status: 'finished', kind: 'training', text: 'kept'
    });
  });
  it('keeps the current value where the saved one is missing or of the wrong kind', () => {
    expect(restoredFilter(current, undefined)).toBe(current);
    expect(restoredFilter(current, { status: 'bogus' as any, project: 42 as any, text: 'x' })).toEqual({ ...current, text: 'x' });
  });
});
