import { deviceSparklines, projectChart, sparkline, MAX_POINTS, IProjectSample } from '../logic/charts';

describe('sparkline', () => {
  it('scales values to the box with y growing downwards', () => {
    const s = sparkline([0, 50, 100], 100, 100, 20);
    expect(s.path).toBe('M0 20L50 10L100 0');
    expect(s.measured).toBe(3);
    expect(s.last).toBe(100);
    expect(s.peak).toBe(100);
  });
  it('breaks the line where a sample was not measured, never drawing a drop to zero', () => {
    const s = sparkline([10, 10, null, 20, 20], 100, 40, 10);
    expect(s.path).toBe('M0 9L10 9M30 8L40 8');
    expect(s.measured).toBe(4);
  });
  it('draws an isolated sample as a short step so that it shows', () => {
    const s = sparkline([null, 50, null], 100, 40, 10);
    expect(s.path).toBe('M17 5L23 5');
    expect(sparkline([50], 100, 40, 10).path).toBe('M17 5L23 5');
  });
  it('draws nothing, and says so, when nothing was measured', () => {
    const s = sparkline([null, null], 100, 40, 10);
    expect(s.path).toBe('');
    expect(s.measured).toBe(0);
    expect(s.last).toBeNull();
  });
  it('clamps values above the scale to the top and keeps only the newest points', () => {
    expect(sparkline([200, 0], 100, 10, 10).path).toBe('M0 0L10 10');
    const many = Array.from({ length: MAX_POINTS + 10 }, (_, i) => i);
    const s = sparkline(many, 1000, 100, 10);
    expect(s.measured).toBe(MAX_POINTS);
    expect(s.last).toBe(MAX_POINTS + 9);
  });
});

describe('deviceSparklines', () => {
  const samples = [
    { at: 't0', allocated_fraction: 0.5, utilization: 20, used_memory: 1024 },
    { at: 't1', allocated_fraction: 1, utilization: 80, used_memory: 2048 }
  ];
  it('gives utilization and memory lines for a measured device', () => {
    const d = deviceSparklines({ node: 'n', index: 0, virtual: false, memory: '4Ki', samples }, 4096, 100, 20);
    expect(d.utilization!.path).toBe('M0 16L100 4');
    expect(d.memory!.path).toBe('M0 15L100 10');
    expect(d.allocated.path).toBe('M0 10L100 0');
    expect(d.summary).toBe('utilization now 80%, peak 80%; 2 samples');
  });
  it('says plainly that a virtual device is not measured', () => {
    const virtual = samples.map(s => ({ ...s, utilization: null, used_memory: null }));
    const d = deviceSparklines({ node: 'n', index: 0, virtual: true, memory: '4Ki', samples: virtual }, 4096, 100, 20);
    expect(d.utilization).toBeNull();
    expect(d.memory).toBeNull();
    expect(d.summary).toContain('virtual device: utilization and memory not measured');
  });
});

describe('projectChart', () => {
  const at = (allocated: number, deserved: number, fair: number | null): IProjectSample => ({ at: 't', allocated, deserved, fair_share: fair, utilization: null });
  it('puts allocated, deserved and fair share on one scale with headroom', () => {
    const c = projectChart([at(0, 2, 2), at(3, 2, 4)], 100, 40);
    expect(c.max).toBeCloseTo(4.4);
    expect(c.allocated.path).toBe('M0 40L100 12.7');
    expect(c.deserved.path).toBe('M0 21.8L100 21.8');
    expect(c.overQuota).toBe(1);
    expect(c.summary).toBe('3 GPUs allocated now (peak 3) of 2 deserved, fair share 4; over quota in 1 of 2 samples');
  });
  it('follows a deserved quota changed at runtime', () => {
    const c = projectChart([at(1, 1, null), at(1, 3, null)], 100, 33);
    expect(c.deserved.path).toBe('M0 23L100 3');
    expect(c.fairShare.path).toBe('');
    expect(c.summary).toBe('1 GPU allocated now (peak 1) of 3 deserved');
  });
  it('has a scale of at least one GPU and says when there is nothing yet', () => {
    expect(projectChart([], 10, 10).summary).toBe('no samples yet');
    expect(projectChart([at(0, 0, 0)], 10, 10).max).toBeCloseTo(1.1);
  });
});
