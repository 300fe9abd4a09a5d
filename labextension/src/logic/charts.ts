/**
 * The geometry of the small inline charts (no DOM here): a device's utilization and memory over
 * time as sparklines, and a project's GPUs allocated over time against its deserved quota and
 * fair share. Samples come from `GET usage/devices` and `GET usage/projects`, oldest first; a
 * sample that was not measured (null) leaves a gap in the line rather than a drop to zero.
 */

/** One device's sample (`usage/devices`). */
export interface IDeviceSample {
  at: string;
  allocated_fraction: number;
  utilization: number | null;
  used_memory: number | null;
}

/** One project's sample (`usage/projects`). */
export interface IProjectSample {
  at: string;
  allocated: number;
  deserved: number;
  fair_share: number | null;
  utilization: number | null;
}

export interface IDeviceUsage {
  node: string;
  index: number;
  virtual: boolean;
  memory: string;
  samples: IDeviceSample[];
}

export interface IProjectUsage {
  name: string;
  samples: IProjectSample[];
}

/** The most samples a chart draws (the newest): the server's ring may be longer. */
export const MAX_POINTS = 240;

export interface ISparkline {
  /** an SVG path ('M x y L x y …', one 'M' per run of measured samples); '' when nothing was measured */
  path: string;
  /** measured samples drawn */
  measured: number;
  /** the newest measured value, or null */
  last: number | null;
  /** the highest measured value, or null */
  peak: number | null;
}

function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/**
 * A line through `values` (oldest first) scaled to `max` (values above it are drawn at the top),
 * `width` x `height` pixels with y growing downwards; nulls break the line. A single measured
 * sample between gaps is drawn as a short flat step so that it shows.
 */
export function sparkline(values: (number | null | undefined)[], max: number, width: number, height: number): ISparkline {
  const shown = values.slice(-MAX_POINTS);
  const n = shown.length;
  const top = max > 0 ? max : 1;
  const step = n > 1 ? width / (n - 1) : 0;
  const parts: string[] = [];
  let measured = 0;
  let last: number | null = null;
  let peak: number | null = null;
  let inRun = false;
  for (let i = 0; i < n; i++) {
    const v = shown[i];
    if (v === null || v === undefined || !Number.isFinite(v)) {
      inRun = false;
      continue;
    }
    measured++;
    last = v;
    peak = peak === null ? v : Math.max(peak, v);
    const x = n > 1 ? i * step : width / 2;
    const y = height - (Math.max(0, Math.min(v, top)) / top) * height;
    const next = shown[i + 1];
    const alone = !inRun && (next === null || next === undefined || !Number.isFinite(next));
    if (alone) {
      // an isolated point: a short flat segment (a path of one point draws nothing)
      const half = n > 1 ? Math.max(1, Math.min(step / 2, 3)) : 3;
      parts.push(`M${fmt(Math.max(0, x - half))} ${fmt(y)}L${fmt(Math.min(width, x + half))} ${fmt(y)}`);
    } else {
      parts.push(`${inRun ? 'L' : 'M'}${fmt(x)} ${fmt(y)}`);
    }
    inRun = true;
  }
  return { path: parts.join(''), measured, last, peak };
}

export interface IDeviceSparklines {
  /** utilization in percent (0–100); null when the device was never measured in the window */
  utilization: ISparkline | null;
  /** used memory against the device's memory; null when never measured */
  memory: ISparkline | null;
  /** the allocated fraction (0–1), always known */
  allocated: ISparkline;
  /** plain words for a screen reader and the tooltip */
  summary: string;
}

/** A device's three lines: utilization (0–100 %), used memory (0–its memory), allocated (0–1). */
export function deviceSparklines(usage: IDeviceUsage, totalMemory: number, width: number, height: number): IDeviceSparklines {
  const s = usage.samples;
  const util = sparkline(
    s.map(x => x.utilization),
    100,
    width,
    height
  );
  const mem = sparkline(
    s.map(x => x.used_memory),
    totalMemory > 0 ? totalMemory : Math.max(1, ...s.map(x => x.used_memory ?? 0)),
    width,
    height
  );
  const allocated = sparkline(
    s.map(x => x.allocated_fraction),
    1,
    width,
    height
  );
  const words: string[] = [];
  if (usage.virtual) {
    words.push('virtual device: utilization and memory not measured');
  } else if (!util.measured) {
    words.push('utilization not measured');
  } else {
    words.push(`utilization now ${Math.round(util.last!)}%, peak ${Math.round(util.peak!)}%`);
  }
  words.push(`${s.length} sample${s.length === 1 ? '' : 's'}`);
  return {
    utilization: usage.virtual || !util.measured ? null : util,
    memory: usage.virtual || !mem.measured ? null : mem,
    allocated,
    summary: words.join('; ')
  };
}

export interface IProjectChart {
  /** the scale's top in GPUs: the highest of allocated, deserved and fair share, at least 1 */
  max: number;
  allocated: ISparkline;
  /** deserved over time (a quota can change at runtime) */
  deserved: ISparkline;
  fairShare: ISparkline;
  /** plain words: now and the peak against the quota */
  summary: string;
  /** samples in which allocated was above deserved */
  overQuota: number;
}

/** A project's GPUs allocated over time against its deserved quota and its fair share. */
export function projectChart(samples: IProjectSample[], width: number, height: number): IProjectChart {
  const shown = samples.slice(-MAX_POINTS);
  let max = 1;
  for (const x of shown) {
    max = Math.max(max, x.allocated, x.deserved, x.fair_share ?? 0);
  }
  // a little headroom so that a line at the top stays visible
  max = Math.round(max * 1.1 * 100) / 100;
  const allocated = sparkline(
    shown.map(x => x.allocated),
    max,
    width,
    height
  );
  const deserved = sparkline(
    shown.map(x => x.deserved),
    max,
    width,
    height
  );
  const fairShare = sparkline(
    shown.map(x => x.fair_share),
    max,
    width,
    height
  );
  const overQuota = shown.filter(x => x.allocated > x.deserved + 1e-9).length;
  const latest = shown[shown.length - 1];
  const summary = latest
    ? `${num(latest.allocated)} GPU${latest.allocated === 1 ? '' : 's'} allocated now (peak ${num(allocated.peak ?? 0)}) of ${num(latest.deserved)} deserved` +
      (latest.fair_share === null ? '' : `, fair share ${num(latest.fair_share)}`) +
      (overQuota ? `; over quota in ${overQuota} of ${shown.length} samples` : '')
    : 'no samples yet';
  return { max, allocated, deserved, fairShare, summary, overQuota };
}

function num(n: number): string {
  return String(Number(n.toFixed(2)));
}
