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

export interface IProjectRow {
  name: string;
  department: string;
  deserved: string;
  allocated: string;
  fairShare: string;
  limit: string;
  weight: string;
  workloads: string;
  /** allocated above deserved (over quota) */
  over: boolean;
  /** at or above its limit */
  atLimit: boolean;
}

/** The projects overview (`runai projects`): one row per project, in GPUs. */
export function projectRows(projects: IProject[]): IProjectRow[] {
  return projects.map(p => {
    const allocated = p.allocated?.gpu ?? 0;
    const deserved = p.deserved?.gpu ?? 0;
    const limit = p.limit?.gpu ?? null;
    return {
      name: p.name,
      department: p.department ?? '',
      deserved: num(deserved),
      allocated: num(allocated),
      fairShare: p.fair_share ? num(p.fair_share.gpu) : '—',
      limit: limit === null ? 'none' : num(limit),
      weight: p.over_quota_weight === undefined ? '' : num(p.over_quota_weight),
      workloads: p.workloads === undefined ? '' : String(p.workloads),
      over: allocated > deserved + 1e-9,
      atLimit: limit !== null && allocated >= limit - 1e-9 && limit > 0
    };
  });
}
