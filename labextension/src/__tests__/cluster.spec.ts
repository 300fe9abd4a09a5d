import { assignColours, clusterSummary, colourOf, deviceCell, PALETTE_SIZE, workloadOfPod, workloadsByDevice } from '../logic/cluster';

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

describe('assignColours', () => {
  const distinctOnEachDevice = (devices: string[][], colours: Map<string, number>) => {
    for (const d of devices) {
      expect(new Set(d.map(w => colours.get(w))).size).toBe(d.length);
    }
  };

  it('gives the workloads that share a device different colours, even when their names collide', () => {
    // names whose own colours are the same: the second moves to the next free colour
    const names = Array.from({ length: 40 }, (_, i) => `p/job-${i}`);
    const a = names[0];
    const b = names.find(n => n !== a && colourOf(n) === colourOf(a))!;
    expect(b).toBeDefined();
    const colours = assignColours([[a, b]]);
    expect(colours.get(a)).not.toBe(colours.get(b));
    expect(colours.get(a)).toBe(colourOf(a)); // the first by name keeps its own
  });

  it('one colour per workload on every device it holds, distinct on each', () => {
    const devices = [['p/ddp', 'p/a', 'p/b'], ['p/ddp', 'p/c', 'p/d'], ['p/a', 'p/e']];
    const colours = assignColours(devices);
    distinctOnEachDevice(devices, colours);
    expect(colours.size).toBe(6);
    const cells = [0, 1].map(i => deviceCell('n', { ...device, index: i, pods: devices[i].map(w => ({ pod: `${w}-0`, fraction: 0.25 })) }, colours));
    expect(cells[0].segments.find(s => s.workload === 'p/ddp')!.colour).toBe(cells[1].segments.find(s => s.workload === 'p/ddp')!.colour);
  });

  it('keeps colours from one refresh to the next: a newcomer moves, not the ones already shown', () => {
    const before = assignColours([['p/x']]);
    // a newcomer that would like x's colour joins x's device: x keeps it
    const rival = Array.from({ length: 60 }, (_, i) => `p/a${i}`).find(n => colourOf(n) === before.get('p/x'))!;
    const after = assignColours([['p/x', rival]], before);
    expect(after.get('p/x')).toBe(before.get('p/x'));
    expect(after.get(rival)).not.toBe(before.get('p/x'));
    // and the same input gives the same colours again
    expect(assignColours([['p/x', rival]], after)).toEqual(after);
  });

  it('repeats a colour only when a device holds more workloads than the palette has', () => {
    const many = Array.from({ length: PALETTE_SIZE + 2 }, (_, i) => `p/w${i}`);
    const colours = assignColours([many]);
    expect(new Set(colours.values()).size).toBe(PALETTE_SIZE);
    const few = many.slice(0, PALETTE_SIZE);
    distinctOnEachDevice([few], assignColours([few]));
  });

  it('groups each device\u2019s pods into workloads', () => {
    expect(workloadsByDevice([{ name: 'n', cpu: '2', memory: '1Gi', schedulable: true, devices: [device] }])).toEqual([['default/half', 'default/ddp']]);
  });
});

declare const require: (path: string) => any;
declare const __dirname: string;

describe('the workload palette (style/base.css)', () => {
  const css: string = require('fs').readFileSync(require('path').join(__dirname, '../../style/base.css'), 'utf8');
  const colours = Array.from({ length: PALETTE_SIZE }, (_, i) => {
    const match = new RegExp(`\\.jp-RunaiColour-${i} \\{\\s*background: (#[0-9a-f]{6})`).exec(css);
    expect(match).not.toBeNull();
    return match![1];
  });
  const hue = (hex: string) => {
    const [r, g, b] = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16) / 255);
    const max = Math.max(r, g, b);
    const d = max - Math.min(r, g, b);
    if (d === 0) {
      return null; // a grey
    }
    const h = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
    return (h * 60 + 360) % 360;
  };

  it('has as many distinct colours as PALETTE_SIZE', () => {
    expect(new Set(colours).size).toBe(PALETTE_SIZE);
  });

  it('has no red, orange or green (they read as error, warning and success)', () => {
    for (const c of colours) {
      const h = hue(c);
      if (h === null) {
        continue;
      }
      expect([c, h < 15 || h > 345]).toEqual([c, false]); // red
      expect([c, h >= 15 && h < 45]).toEqual([c, false]); // orange
      expect([c, h >= 90 && h < 160]).toEqual([c, false]); // green
    }
  });
});
