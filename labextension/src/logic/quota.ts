/** The project's quota bar: where deserved, allocated, fair share and limit sit on one scale. */

import { IProject } from './types';

export interface IQuotaBar {
  /** the scale's end, in GPUs */
  scale: number;
  /** percent of the bar */
  allocatedPct: number;
  /** the part of the allocation above deserved (over quota), percent of the bar */
  overPct: number;
  deservedPct: number;
  fairSharePct: number | null;
  limitPct: number | null;
  allocated: number;
  deserved: number;
  fairShare: number | null;
  limit: number | null;
  /** one line for people: "1.5 of 2 GPUs deserved · fair share 2 · no limit" */
  summary: string;
}

function num(value: number): string {
  return String(Number(value.toFixed(2)));
}

function pct(value: number, scale: number): number {
  return scale > 0 ? Math.max(0, Math.min(100, (100 * value) / scale)) : 0;
}

/**
 * The bar's geometry. The scale covers the cluster's GPUs, the deserved quota, the
 * allocation and the limit (whichever is largest), so every marker is on the bar.
 */
export function quotaBar(project: IProject, clusterGpus: number): IQuotaBar {
  const allocated = project.allocated?.gpu ?? 0;
  const deserved = project.deserved?.gpu ?? 0;
  const fairShare = project.fair_share ? project.fair_share.gpu : null;
  const limit = project.limit?.gpu ?? null;
  const scale = Math.max(clusterGpus, deserved, allocated, limit ?? 0, fairShare ?? 0, 1);
  const over = Math.max(0, allocated - deserved);
  const parts = [`${num(allocated)} of ${num(deserved)} GPU${deserved === 1 ? '' : 's'} deserved in use`];
  if (over > 0) {
    parts.push(`${num(over)} over quota`);
  }
  parts.push(fairShare === null ? 'fair share —' : `fair share ${num(fairShare)}`);
  parts.push(limit === null ? 'no limit' : `limit ${num(limit)}`);
  return {
    scale,
    allocatedPct: pct(allocated, scale),
    overPct: pct(over, scale),
    deservedPct: pct(deserved, scale),
    fairSharePct: fairShare === null ? null : pct(fairShare, scale),
    limitPct: limit === null ? null : pct(limit, scale),
    allocated,
    deserved,
    fairShare,
    limit,
    summary: parts.join(' · ')
  };
}
