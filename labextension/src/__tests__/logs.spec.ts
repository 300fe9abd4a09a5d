import { shouldRestartLogs } from '../logic/logs';

describe('shouldRestartLogs', () => {
  const running = { phase: 'Running', started_at: '2026-01-01T00:00:05Z' };
  it('never restarts a stream that runs (opening a tab reads the log once)', () => {
    expect(shouldRestartLogs(true, true, running, null)).toBe(false);
  });
  it('follows the pod into its next run', () => {
    expect(shouldRestartLogs(false, true, running, '2026-01-01T00:00:01Z')).toBe(true);
    expect(shouldRestartLogs(false, true, running, running.started_at)).toBe(false);
    expect(shouldRestartLogs(false, false, running, null)).toBe(false);
    expect(shouldRestartLogs(false, true, { phase: 'Succeeded', started_at: running.started_at }, null)).toBe(false);
  });
});
