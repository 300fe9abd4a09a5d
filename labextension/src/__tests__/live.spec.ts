import { applyEvent, RateGate } from '../logic/live';
import { IRunaiEvent, IWorkload } from '../logic/types';

function workload(name: string, phase = 'Pending', uid = `uid-${name}`): IWorkload {
  return { uid, spec: { name, project: 'p' } as IWorkload['spec'], status: { phase } as IWorkload['status'] };
}

function event(type: string, name: string, object?: IWorkload | null): IRunaiEvent {
  const e: IRunaiEvent = { id: 1, at: '', type, project: 'p', workload: name, pod: null, message: '' };
  if (object !== undefined) {
    e.object = object;
  }
  return e;
}

describe('applyEvent', () => {
  const list = [workload('a'), workload('b')];

  it('replaces the workload in place by uid', () => {
    const out = applyEvent(list, event('Started', 'b', workload('b', 'Running')));
    expect(out!.map(w => [w.spec.name, w.status.phase])).toEqual([['a', 'Pending'], ['b', 'Running']]);
    expect(list[1].status.phase).toBe('Pending'); // the list it was given is not changed
  });

  it('adds a new workload at the end and removes one on Deleted', () => {
    const added = applyEvent(list, event('Submitted', 'c', workload('c')))!;
    expect(added.map(w => w.spec.name)).toEqual(['a', 'b', 'c']);
    const removed = applyEvent(added, event('Deleted', 'a', null))!;
    expect(removed.map(w => w.spec.name)).toEqual(['b', 'c']);
    expect(applyEvent(removed, event('Deleted', 'a', null))).toBe(removed);
  });

  it('says it cannot when the event carries no workload (replayed, or of no workload)', () => {
    expect(applyEvent(list, event('Started', 'a'))).toBeNull();
    expect(applyEvent(list, { ...event('Warning', ''), workload: null, object: null })).toBeNull();
    expect(applyEvent(list, event('Started', 'a', null))).toBeNull();
  });
});

describe('RateGate', () => {
  it('runs at once, then at most once per interval however often it is asked', () => {
    let now = 0;
    const timers: Array<[() => void, number]> = [];
    let runs = 0;
    const gate = new RateGate(() => runs++, 1000, () => now, (f, ms) => timers.push([f, ms]));
    gate.request();
    expect(runs).toBe(1);
    now = 100;
    gate.request();
    gate.request();
    gate.request();
    expect(runs).toBe(1);
    expect(timers.map(t => t[1])).toEqual([900]);
    now = 1000;
    timers[0][0]();
    expect(runs).toBe(2);
    now = 2500;
    gate.request();
    expect(runs).toBe(3);
  });
});
