import { MAX_NOTICES, noticesFor } from '../logic/notify';
import { IWorkload } from '../logic/types';

function wl(name: string, phase: string, extra: Partial<{ by: string; message: string; podMessage: string; uid: string }> = {}): IWorkload {
  return {
    uid: extra.uid ?? `uid-${name}`,
    submitted_by: extra.by ?? 'ada',
    spec: { name, project: 'team', kind: 'training', resources: { gpu: 1 } },
    status: {
      phase: phase as any,
      pending_reason: null,
      message: extra.message ?? null,
      pods: extra.podMessage
        ? [{ name: `${name}-0`, index: 0, phase: 'Pending', node: null, devices: [], fraction: null, gpu_memory: null, started_at: null, finished_at: null, message: extra.podMessage }]
        : [],
      url: null,
      submitted_at: '2026-01-01T00:00:00Z',
      started_at: null,
      finished_at: null
    }
  };
}

const ME = { user: 'ada', notify: 'all' as const };

function step(before: IWorkload[], after: IWorkload[], context: any = ME) {
  const first = noticesFor(null, before, context);
  return noticesFor(first.watched, after, context).notices;
}

describe('noticesFor', () => {
  it('tells nothing at the first load, whatever the history', () => {
    const r = noticesFor(null, [wl('a', 'Failed'), wl('b', 'Succeeded'), wl('c', 'Pending', { podMessage: 'evicted: reclaimed' })], ME);
    expect(r.notices).toEqual([]);
    expect(r.watched.size).toBe(3);
  });

  it('tells once when a running workload of mine fails, with the way to open it', () => {
    const before = [wl('a', 'Running')];
    const after = [wl('a', 'Failed', { message: 'pod a-0 exited with code 3' })];
    const notices = step(before, after);
    expect(notices).toEqual([
      { kind: 'failed', project: 'team', name: 'a', type: 'error', message: 'Training a failed: pod a-0 exited with code 3' }
    ]);
    // the next refresh with the same state tells nothing more
    const once = noticesFor(null, before, ME);
    const twice = noticesFor(once.watched, after, ME);
    expect(noticesFor(twice.watched, after, ME).notices).toEqual([]);
  });

  it('tells when a workload succeeds, and when one appears already ended after the load', () => {
    expect(step([wl('a', 'Running')], [wl('a', 'Succeeded')])[0]).toMatchObject({ kind: 'succeeded', type: 'success' });
    expect(step([], [wl('quick', 'Failed')])[0]).toMatchObject({ kind: 'failed', name: 'quick' });
  });

  it('tells an eviction once, with why', () => {
    const evicted = wl('a', 'Pending', { podMessage: 'evicted: reclaimed by team-b/big; waiting to be placed again' });
    const notices = step([wl('a', 'Running')], [evicted]);
    expect(notices).toHaveLength(1);
    expect(notices[0].kind).toBe('evicted');
    expect(notices[0].message).toBe('Training a was evicted and waits again: reclaimed by team-b/big');
    const first = noticesFor(null, [wl('a', 'Running')], ME);
    const second = noticesFor(first.watched, [evicted], ME);
    expect(noticesFor(second.watched, [evicted], ME).notices).toEqual([]);
  });

  it('says "evicted" once, whatever words the scheduler used', () => {
    const said = (podMessage: string) => step([wl('a', 'Running')], [wl('a', 'Pending', { podMessage })])[0].message;
    expect(said('evicted: moved to another node to make room; waiting to be placed again')).toBe(
      'Training a was evicted and waits again: moved to another node to make room'
    );
    expect(said('evicted to make room for other work: reclaimed by project vision for vision/long-6')).toBe(
      'Training a was evicted and waits again: reclaimed by project vision for vision/long-6'
    );
    expect(said('evicted to make room for other work')).toBe('Training a was evicted and waits again: to make room for other work');
  });

  it('says nothing of other users\u2019 workloads, or with no user known', () => {
    expect(step([wl('a', 'Running', { by: 'bob' })], [wl('a', 'Failed', { by: 'bob' })])).toEqual([]);
    expect(step([wl('a', 'Running')], [wl('a', 'Failed')], { user: null, notify: 'all' })).toEqual([]);
  });

  it('says nothing of a stop asked from this page, but tells one by a rule', () => {
    const requested = new Set(['uid-a']);
    expect(step([wl('a', 'Running')], [wl('a', 'Stopped')], { ...ME, requested })).toEqual([]);
    expect(step([wl('a', 'Running')], [wl('a', 'Stopped', { message: 'idle for 30m' })])[0]).toMatchObject({ kind: 'stopped', message: 'Training a was stopped: idle for 30m' });
  });

  it('a reused name is another workload', () => {
    expect(step([wl('a', 'Failed', { uid: 'old' })], [wl('a', 'Failed', { uid: 'new' })])).toHaveLength(1);
  });

  it('follows the notifications setting', () => {
    const before = [wl('a', 'Running'), wl('b', 'Running')];
    const after = [wl('a', 'Succeeded'), wl('b', 'Failed')];
    expect(step(before, after, { user: 'ada', notify: 'failures' }).map(n => n.name)).toEqual(['b']);
    expect(step(before, after, { user: 'ada', notify: 'off' })).toEqual([]);
  });

  it('sums a burst up: the failures first, then one notice for the rest', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const before = names.map(n => wl(n, 'Running'));
    const after = names.map(n => wl(n, n === 'f' ? 'Failed' : 'Succeeded'));
    const notices = step(before, after);
    expect(notices).toHaveLength(MAX_NOTICES + 1);
    expect(notices[0]).toMatchObject({ name: 'f', kind: 'failed' });
    expect(notices[MAX_NOTICES].message).toBe('3 more of your workloads ended or were evicted');
  });
});
