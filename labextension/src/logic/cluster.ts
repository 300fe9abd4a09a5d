/** The cluster view's grid: per device, the fractions held by each workload, in a stable colour. */

import { bytesLabel, parseMemory } from './format';
import { IDevice, INode } from './types';

export interface ISegment {
  /** "project/workload" */
  workload: string;
  pods: string[];
  fraction: number;
  /** 0..PALETTE_SIZE-1, the same for a workload everywhere */
  colour: number;
}

export interface IDeviceCell {
  node: string;
  index: number;
  model: string;
  virtual: boolean;
  memory: string;
  segments: ISegment[];
  allocated: number;
  free: number;
  utilization: string;
  memoryUse: string;
  title: string;
}

export const PALETTE_SIZE = 8;

/** "default/train-1-0" -> "default/train-1" (pods are <workload>-<index>). */
export function workloadOfPod(pod: string): string {
  return pod.replace(/-\d+$/, '');
}

/** A workload's preferred colour: from its name, so the same on every page and refresh. */
export function colourOf(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) {
    h = (h * 31 + name.charCodeAt(i)) >>> 0;
  }
  return h % PALETTE_SIZE;
}

/**
 * One colour per workload for the whole grid: the same on every device it holds, different
 * from every other workload that shares a device with it (while the palette has room: more
 * workloads than colours on one device must repeat one). A workload keeps the colour it had
 * (`previous`) unless a workload it now shares a device with had it first; a new one takes
 * its name's colour, else the next one free on its devices. So colours move only when they
 * must. `devices` lists, per device, the workloads on it.
 */
export function assignColours(devices: string[][], previous: ReadonlyMap<string, number> = new Map(), size = PALETTE_SIZE): Map<string, number> {
  const neighbours = new Map<string, Set<string>>();
  for (const workloads of devices) {
    for (const w of workloads) {
      const set = neighbours.get(w) ?? new Set<string>();
      for (const other of workloads) {
        if (other !== w) {
          set.add(other);
        }
      }
      neighbours.set(w, set);
    }
  }
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const known = [...neighbours.keys()].filter(w => previous.has(w)).sort(byName);
  const fresh = [...neighbours.keys()].filter(w => !previous.has(w)).sort(byName);
  const out = new Map<string, number>();
  for (const w of [...known, ...fresh]) {
    const preferred = previous.get(w) ?? colourOf(w);
    const taken = new Set<number>();
    for (const other of neighbours.get(w)!) {
      const c = out.get(other);
      if (c !== undefined) {
        taken.add(c);
      }
    }
    let colour = preferred % size;
    for (let step = 0; step < size; step++) {
      const candidate = (preferred + step) % size;
      if (!taken.has(candidate)) {
        colour = candidate;
        break;
      }
    }
    out.set(w, colour);
  }
  return out;
}

/** Each device's workloads (grouped from its pods), for assignColours. */
export function workloadsByDevice(nodes: INode[]): string[][] {
  const out: string[][] = [];
  for (const n of nodes) {
    for (const d of n.devices) {
      out.push(Array.from(new Set(d.pods.map(p => workloadOfPod(p.pod)))));
    }
  }
  return out;
}

/** One device's cell; `colours` from assignColours (a workload missing there gets its name's colour). */
export function deviceCell(node: string, d: IDevice, colours: ReadonlyMap<string, number> = new Map()): IDeviceCell {
  const byWorkload = new Map<string, ISegment>();
  for (const p of d.pods) {
    const w = workloadOfPod(p.pod);
    const seg = byWorkload.get(w) ?? { workload: w, pods: [], fraction: 0, colour: colours.get(w) ?? colourOf(w) };
    seg.pods.push(p.pod);
    seg.fraction += p.fraction;
    byWorkload.set(w, seg);
  }
  const segments = Array.from(byWorkload.values());
  const allocated = Math.min(1, d.allocated_fraction ?? segments.reduce((a, s) => a + s.fraction, 0));
  const total = parseMemory(d.memory);
  const used = d.used_memory;
  const memoryUse =
    used === null || used === undefined
      ? `${bytesLabel(d.allocated_memory)} allocated of ${bytesLabel(total)}`
      : `${bytesLabel(used)} used · ${bytesLabel(d.allocated_memory)} allocated of ${bytesLabel(total)}`;
  const utilization = d.utilization === null || d.utilization === undefined ? 'not measured' : `${Math.round(d.utilization)}%`;
  const lines = [`${node} · GPU ${d.index} · ${d.model}${d.virtual ? ' (virtual)' : ''}`];
  for (const s of segments) {
    lines.push(`${s.workload}: ${Number(s.fraction.toFixed(2))}`);
  }
  lines.push(`free: ${Number((1 - allocated).toFixed(2))}`);
  return {
    node,
    index: d.index,
    model: d.model,
    virtual: d.virtual,
    memory: d.memory,
    segments,
    allocated,
    free: Math.max(0, 1 - allocated),
    utilization,
    memoryUse,
    title: lines.join('\n')
  };
}

export interface IClusterSummary {
  nodes: number;
  devices: number;
  allocated: number;
  virtual: number;
}

export function clusterSummary(nodes: INode[]): IClusterSummary {
  let devices = 0;
  let allocated = 0;
  let virtual = 0;
  for (const n of nodes) {
    for (const d of n.devices) {
      devices++;
      allocated += Math.min(1, d.allocated_fraction);
      virtual += d.virtual ? 1 : 0;
    }
  }
  return { nodes: nodes.length, devices, allocated: Number(allocated.toFixed(2)), virtual };
}
