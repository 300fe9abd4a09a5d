import { clusterSummary, colourOf, deviceCell, workloadOfPod } from '../logic/cluster';

const device = {
  index: 0, uuid: 'u', model: 'Virtual GPU', memory: '24Gi', virtual: true, allocated_fraction: 0.75,
  allocated_memory: 18 * 2 ** 30, used_memory: null, utilization: null,
  pods: [{ pod: 'default/half-0', fraction: 0.5 }, { pod: 'default/ddp-1', fraction: 0.125 }, { pod: 'default/ddp-2', fraction: 0.125 }]
};

describe('cluster grid', () => {
  it('groups a device\'s pods by workload with a stable colour', () => {
    expect(workloadOfPod('default/ddp-12')).toBe('default/ddp');
    const cell = deviceCell('vm', device);
    expect(cell.segments.map(s => [s.workload, s.fraction])).toEqual([['default/half', 0.5], ['default/ddp', 0.25]]);
    expect(cell.segments[0].colour).toBe(colourOf('default/half'));
    expect(cell.free).toBeCloseTo(0.25);
    expect(cell.virtual).toBe(true);
    expect(cell.utilization).toBe('not measured');
    expect(cell.memoryUse).toBe('18 GiB allocated of 24 GiB');
    expect(cell.title).toContain('(virtual)');
  });
  it('shows measured utilization and memory', () => {
    const cell = deviceCell('gpu1', { ...device, virtual: false, utilization: 63.4, used_memory: 2 ** 30 });
    expect(cell.utilization).toBe('63%');
    expect(cell.memoryUse).toMatch(/^1 GiB used/);
  });
  it('sums the cluster', () => {
    expect(clusterSummary([{ name: 'vm', cpu: '2', memory: '1Gi', schedulable: true, devices: [device, { ...device, index: 1, allocated_fraction: 1 }] }]))
      .toEqual({ nodes: 1, devices: 2, allocated: 1.75, virtual: 2 });
  });
});
