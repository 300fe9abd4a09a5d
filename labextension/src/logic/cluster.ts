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

export function colourOf(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) {
    h = (h * 31 + name.charCodeAt(i)) >>> 0;
  }
  return h % PALETTE_SIZE;
}

export function deviceCell(node: string, d: IDevice): IDeviceCell {
  const byWorkload = new Map<string, ISegment>();
  for (const p of d.pods) {
    const w = workloadOfPod(p.pod);
    const seg = byWorkload.get(w) ?? { workload: w, pods: [], fraction: 0, colour: colourOf(w) };
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
