import { ageLabel, ageOf, bytesLabel, gpuRequestLabel, gpuRequestTitle, isFinished, parseMemory, phaseClass } from '../logic/format';
import { IWorkload } from '../logic/types';

describe('gpuRequestLabel', () => {
  it('names whole devices, fractions, memory, dynamic fractions and none', () => {
    expect(gpuRequestLabel({ gpu: 1 })).toBe('1 GPU');
    expect(gpuRequestLabel({ gpu: 2 })).toBe('2 GPUs');
    expect(gpuRequestLabel({ gpu: 0.5 })).toBe('0.5 GPU');
    expect(gpuRequestLabel({ gpu: 0.5, gpu_devices: 4 })).toBe('0.5 GPU × 4 devices');
    expect(gpuRequestLabel({ gpu: 0.25, gpu_limit: 0.75 })).toBe('0.25–0.75 GPU');
    expect(gpuRequestLabel({ gpu_memory: '20Gi' })).toBe('20Gi GPU memory');
    expect(gpuRequestLabel({ gpu: 0 })).toBe('no GPU');
    expect(gpuRequestLabel(null)).toBe('no GPU');
  });
  it('explains the request in words', () => {
    expect(gpuRequestTitle({ gpu: 0.25, gpu_limit: 0.75 })).toContain('bursting up to 0.75');
    expect(gpuRequestTitle({ gpu: 2 })).toBe('2 whole devices');
  });
});

describe('ages and sizes', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  it('counts seconds, minutes, hours and days', () => {
    expect(ageLabel('2026-01-01T11:59:50Z', now)).toBe('10s');
    expect(ageLabel('2026-01-01T11:55:00Z', now)).toBe('5m');
    expect(ageLabel('2026-01-01T09:00:00Z', now)).toBe('3h');
    expect(ageLabel('2025-12-25T12:00:00Z', now)).toBe('7d');
    expect(ageLabel(null, now)).toBe('');
    expect(ageLabel('garbage', now)).toBe('');
  });
  it('takes the age of a running workload from its start, a finished one from its end', () => {
    const w = {
      spec: { name: 'a', project: 'p', kind: 'training', resources: {} },
      status: { phase: 'Running', pods: [], submitted_at: '2026-01-01T11:00:00Z', started_at: '2026-01-01T11:58:00Z', finished_at: null, pending_reason: null, message: null, url: null }
    } as unknown as IWorkload;
    expect(ageOf(w, now)).toBe('started 2m ago');
    w.status.phase = 'Succeeded';
    w.status.finished_at = '2026-01-01T11:59:30Z';
    expect(ageOf(w, now)).toBe('finished 30s ago');
    // right after the end: words, not a bare "0s"
    w.status.finished_at = '2026-01-01T12:00:00Z';
    expect(ageOf(w, now)).toBe('finished just now');
    w.status.phase = 'Pending';
    expect(ageOf(w, now)).toBe('submitted 1h ago');
  });
  it('formats and parses memory', () => {
    expect(bytesLabel(25769803776)).toBe('24 GiB');
    expect(bytesLabel(1536 * 1024 * 1024)).toBe('1.5 GiB');
    expect(bytesLabel(null)).toBe('—');
    expect(parseMemory('24Gi')).toBe(24 * 2 ** 30);
    expect(parseMemory('1G')).toBe(1e9);
    expect(parseMemory('512')).toBe(512);
    expect(parseMemory('12 apples')).toBeNaN();
  });
  it('maps phases to chip classes', () => {
    expect(phaseClass('Pending')).toBe('pending');
    expect(phaseClass('Deleting')).toBe('stopping');
    expect(phaseClass('Whatever')).toBe('unknown');
    expect(isFinished('Stopped')).toBe(true);
    expect(isFinished('Running')).toBe(false);
  });
});
