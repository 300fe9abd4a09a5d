import { bulkTargets, DEFAULT_SORT, durationLabel, finishedTargets, nextSort, prunedSelection, restoredLayout, sortTable } from '../logic/table';
import { IWorkload } from '../logic/types';

const NOW = Date.parse('2026-01-01T01:00:00Z');

function wl(name: string, extra: Partial<{ project: string; kind: string; phase: string; resources: any; submitted: string; started: string | null; finished: string | null }> = {}): IWorkload {
  return {
    uid: name,
    spec: { name, project: extra.project ?? 'p', kind: extra.kind ?? 'training', resources: extra.resources ?? { gpu: 1 } },
    status: {
      phase: extra.phase ?? 'Running',
      pending_reason: null,
      message: null,
      url: null,
      pods: [],
      submitted_at: extra.submitted ?? '2026-01-01T00:00:00Z',
      started_at: extra.started ?? null,
      finished_at: extra.finished ?? null
    }
  } as unknown as IWorkload;
}

const names = (ws: IWorkload[]) => ws.map(w => w.spec.name);

describe('sortTable', () => {
  it('sorts names as people read them (job-2 before job-10), and turns around', () => {
    const ws = [wl('job-10'), wl('job-2'), wl('Alpha'), wl('beta')];
    expect(names(sortTable(ws, { column: 'name', descending: false }, NOW))).toEqual(['Alpha', 'beta', 'job-2', 'job-10']);
    expect(names(sortTable(ws, { column: 'name', descending: true }, NOW))).toEqual(['job-10', 'job-2', 'beta', 'Alpha']);
  });

  it('sorts GPUs by what is requested: none, a memory share, fractions, fractions across devices, whole GPUs', () => {
    const ws = [
      wl('two', { resources: { gpu: 2 } }),
      wl('none', { resources: {} }),
      wl('half', { resources: { gpu: 0.5 } }),
      wl('mem20', { resources: { gpu_memory: '20Gi' } }),
      wl('mem8', { resources: { gpu_memory: '8Gi' } }),
      wl('half-x4', { resources: { gpu: 0.5, gpu_devices: 4 } }),
      wl('one', { resources: { gpu: 1 } })
    ];
    expect(names(sortTable(ws, { column: 'gpu', descending: false }, NOW))).toEqual(['none', 'mem8', 'mem20', 'half', 'one', 'half-x4', 'two']);
  });

  it('sorts status by where it is in its life, finished last', () => {
    const ws = ['Succeeded', 'Running', 'Failed', 'Pending', 'Stopped'].map(phase => wl(phase.toLowerCase(), { phase }));
    expect(names(sortTable(ws, { column: 'status', descending: false }, NOW))).toEqual(['pending', 'running', 'failed', 'stopped', 'succeeded']);
  });

  it('sorts age with the latest submission first, and duration by how long each ran', () => {
    const ws = [
      wl('old', { submitted: '2026-01-01T00:00:00Z', started: '2026-01-01T00:00:10Z', finished: '2026-01-01T00:05:10Z' }),
      wl('new', { submitted: '2026-01-01T00:50:00Z', started: '2026-01-01T00:50:00Z' }),
      wl('waiting', { submitted: '2026-01-01T00:30:00Z', phase: 'Pending' })
    ];
    expect(names(sortTable(ws, DEFAULT_SORT, NOW))).toEqual(['new', 'waiting', 'old']);
    // old ran 5 minutes, new runs for 10 now, waiting never started
    expect(names(sortTable(ws, { column: 'duration', descending: true }, NOW))).toEqual(['new', 'old', 'waiting']);
    expect(ws.map(w => durationLabel(w, NOW))).toEqual(['5m', '10m', '—']);
  });

  it('breaks ties by project and name, the same way in both directions', () => {
    const ws = [wl('b', { project: 'y' }), wl('a', { project: 'y' }), wl('c', { project: 'x' })];
    expect(names(sortTable(ws, { column: 'kind', descending: false }, NOW))).toEqual(['c', 'a', 'b']);
    expect(names(sortTable(ws, { column: 'kind', descending: true }, NOW))).toEqual(['c', 'a', 'b']);
    expect(names(sortTable(ws, { column: 'project', descending: true }, NOW))).toEqual(['a', 'b', 'c']);
  });
});

describe('nextSort and restoredLayout', () => {
  it('a second click on a header turns the order around; another column starts ascending', () => {
    expect(nextSort({ column: 'name', descending: false }, 'name')).toEqual({ column: 'name', descending: true });
    expect(nextSort({ column: 'name', descending: true }, 'gpu')).toEqual({ column: 'gpu', descending: false });
  });

  it('takes a saved view and sort only when they are of the right kind', () => {
    expect(restoredLayout({ view: 'table', sort: { column: 'gpu', descending: true } })).toEqual({ view: 'table', sort: { column: 'gpu', descending: true } });
    expect(restoredLayout({ view: 'grid', sort: { column: 'colour' } })).toEqual({ view: 'cards', sort: DEFAULT_SORT });
    expect(restoredLayout(null)).toEqual({ view: 'cards', sort: DEFAULT_SORT });
  });

  it('uses the default-view setting only while no view was saved', () => {
    expect(restoredLayout(null, 'table').view).toBe('table');
    expect(restoredLayout({ view: 'grid' }, 'table').view).toBe('table');
    expect(restoredLayout({ view: 'cards' }, 'table').view).toBe('cards');
  });
});

describe('bulk actions', () => {
  const ws = [
    wl('run', { phase: 'Running' }),
    wl('wait', { phase: 'Pending' }),
    wl('ok', { phase: 'Succeeded' }),
    wl('bad', { phase: 'Failed' }),
    wl('halt', { phase: 'Stopped' }),
    wl('going', { phase: 'Deleting' })
  ];
  const all = new Set(ws.map(w => `p/${w.spec.name}`));

  it('Stop acts on the selected pending and running ones only', () => {
    expect(names(bulkTargets(ws, all, 'stop'))).toEqual(['run', 'wait']);
    expect(names(bulkTargets(ws, new Set(['p/ok', 'p/run']), 'stop'))).toEqual(['run']);
  });

  it('Delete acts on every selected one not already going', () => {
    expect(names(bulkTargets(ws, all, 'delete'))).toEqual(['run', 'wait', 'ok', 'bad', 'halt']);
    expect(names(bulkTargets(ws, new Set(), 'delete'))).toEqual([]);
  });

  it('Clear finished takes the succeeded, failed and stopped ones', () => {
    expect(names(finishedTargets(ws))).toEqual(['ok', 'bad', 'halt']);
  });

  it('a selection keeps only workloads still shown', () => {
    expect([...prunedSelection(new Set(['p/run', 'p/gone', 'q/run']), ws)]).toEqual(['p/run']);
  });
});
