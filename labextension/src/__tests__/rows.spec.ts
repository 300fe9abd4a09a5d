import { changedParts, planList, rowView } from '../logic/rows';
import { IWorkload } from '../logic/types';
import { evictionOf } from '../logic/workloads';

function wl(name: string, phase: string, extra: any = {}): IWorkload {
  return {
    uid: name,
    spec: { name, project: 'p', kind: 'training', resources: { gpu: 1 } },
    status: {
      phase,
      pending_reason: extra.reason ?? null,
      message: null,
      url: null,
      pods: (extra.pods ?? [null]).map((message: string | null, i: number) => ({
        name: `${name}-${i}`, index: i, phase, node: null, devices: [], fraction: null, gpu_memory: null,
        started_at: extra.started ?? null, finished_at: null, message
      })),
      submitted_at: '2026-01-01T00:00:00Z',
      started_at: extra.started ?? null,
      finished_at: null
    }
  } as IWorkload;
}

describe('rows patched in place', () => {
  it('a refresh that brings the same workload (a new object) changes nothing in its row', () => {
    const before = rowView(wl('a', 'Running', { started: '2026-01-01T00:00:01Z' }), false);
    const after = rowView(wl('a', 'Running', { started: '2026-01-01T00:00:01Z' }), false);
    expect(changedParts(before, after)).toEqual([]);
  });
  it('a change of phase patches the head and the actions, not the rest', () => {
    const before = rowView(wl('a', 'Pending'), false);
    const after = rowView(wl('a', 'Running', { started: '2026-01-01T00:00:01Z' }), false);
    expect(changedParts(before, after)).toEqual(['head', 'why', 'actions']);
    expect(before.actions).toEqual(['stop', 'delete']);
    expect(after.actions).toEqual(['logs', 'stop', 'delete']);
  });
  it('a new row is built whole', () => {
    expect(changedParts(null, rowView(wl('a', 'Running'), false))).toEqual(['head', 'meta', 'why', 'message', 'actions']);
  });
  it('a workload arriving or ending moves no other row', () => {
    expect(planList(['a', 'b', 'c'], ['n', 'a', 'b', 'c'])).toEqual({ remove: [], add: ['n'], move: [] });
    expect(planList(['a', 'b', 'c'], ['a', 'c'])).toEqual({ remove: ['b'], add: [], move: [] });
  });
  it('a reordering moves the fewest rows', () => {
    expect(planList(['a', 'b', 'c', 'd'], ['b', 'c', 'd', 'a'])).toEqual({ remove: [], add: [], move: ['a'] });
    expect(planList(['a', 'b', 'c'], ['c', 'b', 'a']).move).toHaveLength(2);
    expect(planList([], ['a', 'b'])).toEqual({ remove: [], add: ['a', 'b'], move: [] });
  });
});

describe('what a row says', () => {
  it('a distributed job\u2019s GPUs read per pod, beside its pods', () => {
    const ddp = wl('d', 'Running', { pods: [null, null, null, null] });
    ddp.spec = { ...ddp.spec, kind: 'distributed', workers: 3 };
    const view = rowView(ddp, false);
    expect(view.gpuLabel).toBe('1 GPU per pod');
    expect(view.pods).toBe('4 pods');
    expect(rowView(wl('t', 'Running'), false).gpuLabel).toBe('1 GPU');
    // a pending distributed job has no pods yet: still per pod
    const waiting = wl('w', 'Pending', { pods: [] });
    waiting.spec = { ...waiting.spec, kind: 'distributed', workers: 3 };
    expect(rowView(waiting, false).gpuLabel).toBe('1 GPU per pod');
  });
  it('a pending workload says its place in the queue', () => {
    const w = wl('q', 'Pending');
    w.status.queue_position = 3;
    expect(rowView(w, false).queue).toBe('3rd in its project\u2019s queue');
    expect(rowView(wl('r', 'Running'), false).queue).toBeNull();
  });
});

describe('evictions', () => {
  it('says that a waiting workload was evicted, why and by what', () => {
    const w = wl('v', 'Pending', {
      reason: 'pod p/v-0 needs 1 whole GPU on one node; no GPU is idle',
      pods: ['evicted to make room for other work: p/big; waiting to be placed again']
    });
    expect(evictionOf(w)).toBe('Evicted to make room for other work: p/big');
    expect(rowView(w, false).evicted).toBe('Evicted to make room for other work: p/big');
    expect(rowView(w, false).pending?.summary).toBe('Waiting for free GPUs');
  });
  it('names the pod of a workload with several, and says "Evicted" without a reason', () => {
    expect(evictionOf(wl('d', 'Pending', { pods: [null, 'evicted; waiting to be placed again'] }))).toBe('Evicted (pod d-1)');
    expect(evictionOf(wl('c', 'Pending', { pods: ['evicted: moved to another node to make room'] }))).toBe(
      'Evicted: moved to another node to make room'
    );
    expect(evictionOf(wl('d', 'Pending'))).toBeNull();
  });
});
