/** Labels shown to people: GPU requests, ages, byte sizes, phases. Pure functions. */

import { IResources, IWorkload, Phase } from './types';

function trimNumber(value: number, digits = 2): string {
  return String(Number(value.toFixed(digits)));
}

/** "1 GPU", "2 GPUs", "0.5 GPU", "0.5 GPU × 2 devices", "0.25–0.75 GPU", "12Gi GPU memory", "no GPU". */
export function gpuRequestLabel(resources: IResources | undefined | null): string {
  const r = resources ?? {};
  const devices = r.gpu_devices && r.gpu_devices > 1 ? r.gpu_devices : 1;
  const across = devices > 1 ? ` × ${devices} devices` : '';
  if (r.gpu_memory) {
    return `${r.gpu_memory} GPU memory${across}`;
  }
  const gpu = r.gpu ?? 0;
  if (!gpu) {
    return 'no GPU';
  }
  if (gpu >= 1) {
    return `${trimNumber(gpu)} GPU${gpu === 1 ? '' : 's'}`;
  }
  if (r.gpu_limit && r.gpu_limit > gpu) {
    return `${trimNumber(gpu)}–${trimNumber(r.gpu_limit)} GPU${across}`;
  }
  return `${trimNumber(gpu)} GPU${across}`;
}

/** A short title-tooltip for the GPU request: whole / fraction / memory, in words. */
export function gpuRequestTitle(resources: IResources | undefined | null): string {
  const r = resources ?? {};
  if (r.gpu_memory) {
    return `a share of one device by memory (${r.gpu_memory} per device)`;
  }
  const gpu = r.gpu ?? 0;
  if (!gpu) {
    return 'runs without a GPU';
  }
  if (gpu >= 1) {
    return `${gpu} whole device${gpu === 1 ? '' : 's'}`;
  }
  const dyn = r.gpu_limit && r.gpu_limit > gpu ? `, bursting up to ${r.gpu_limit} when the device has room` : '';
  return `a fraction (${gpu}) of a device${dyn}`;
}

/** "12s", "5m", "3h", "2d" since `from` (ISO time) at `now` (ms). */
export function ageLabel(from: string | null | undefined, now: number = Date.now()): string {
  if (!from) {
    return '';
  }
  const t = Date.parse(from);
  if (isNaN(t)) {
    return '';
  }
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 60) {
    return `${s}s`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    return `${m}m`;
  }
  const h = Math.floor(m / 60);
  if (h < 48) {
    return `${h}h`;
  }
  return `${Math.floor(h / 24)}d`;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 25769803776 -> "24 GiB". */
export function bytesLabel(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || isNaN(bytes)) {
    return '—';
  }
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${trimNumber(value, value >= 10 ? 0 : 1)} ${UNITS[unit]}`;
}

const SUFFIX: Record<string, number> = {
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50,
  k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15
};

/** Kubernetes memory quantity ("24Gi", "512Mi", "1G", "1073741824") to bytes; NaN when it is not one. */
export function parseMemory(text: string | null | undefined): number {
  if (text === null || text === undefined) {
    return NaN;
  }
  const match = /^\s*([0-9]*\.?[0-9]+)\s*([KMGTP]i|[kKMGTP])?\s*$/.exec(String(text));
  if (!match) {
    return NaN;
  }
  return parseFloat(match[1]) * (match[2] ? SUFFIX[match[2]] : 1);
}

/** The chip's modifier class for a phase (colour), and whether the phase is a final one. */
export function phaseClass(phase: Phase | string): string {
  switch (phase) {
    case 'Pending':
      return 'pending';
    case 'Running':
      return 'running';
    case 'Succeeded':
      return 'succeeded';
    case 'Failed':
      return 'failed';
    case 'Stopping':
    case 'Deleting':
      return 'stopping';
    case 'Stopped':
      return 'stopped';
    default:
      return 'unknown';
  }
}

export function isFinished(phase: Phase | string): boolean {
  return phase === 'Succeeded' || phase === 'Failed' || phase === 'Stopped';
}

/** "3m ago", or "just now" within the first second (never a bare "0s"). */
export function agoLabel(from: string | null | undefined, now: number = Date.now()): string {
  const age = ageLabel(from, now);
  if (!age) {
    return '';
  }
  return age === '0s' ? 'just now' : `${age} ago`;
}

/** A card's age, saying what it counts from: "finished 2s ago", "started 3m ago", "submitted just now". */
export function ageOf(w: IWorkload, now: number = Date.now()): string {
  const s = w.status;
  if (isFinished(s.phase) && s.finished_at) {
    return `finished ${agoLabel(s.finished_at, now)}`;
  }
  if (s.phase === 'Running' && s.started_at) {
    return `started ${agoLabel(s.started_at, now)}`;
  }
  const since = agoLabel(s.submitted_at, now);
  return since ? `submitted ${since}` : '';
}

/** 1 -> "first in its project's queue", 2 -> "2nd in its project's queue", 23 -> "23rd …". */
export function queueLabel(position: number): string {
  if (position <= 1) {
    return 'first in its project\u2019s queue';
  }
  const tens = position % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[position % 10] ?? 'th';
  return `${position}${suffix} in its project\u2019s queue`;
}

export const KIND_SHORT: Record<string, string> = {
  workspace: 'workspace',
  training: 'training',
  distributed: 'distributed',
  inference: 'inference'
};
