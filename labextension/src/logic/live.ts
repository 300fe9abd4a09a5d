/**
 * Keeping the workload list current from the event stream alone: each live event of a workload
 * carries the workload as the server shows it (`object`), so the sidebar patches its list
 * instead of reading it again. Pure functions, tested on their own.
 */

import { IRunaiEvent, IWorkload } from './types';

/**
 * The list after the event: the workload of `event.object` replaced where it is (by uid) or
 * added at the end (queue order is the order of submission), removed on a `Deleted` event.
 * `null` when the event cannot be applied (a replayed event, or one of no workload: no
 * `object`): the caller reads the list again. An event that changes nothing returns the same array.
 */
export function applyEvent(workloads: IWorkload[], event: IRunaiEvent): IWorkload[] | null {
  if (!event.workload || event.object === undefined) {
    return null;
  }
  const object = event.object;
  if (object === null) {
    if (event.type !== 'Deleted') {
      return null;
    }
    const rest = workloads.filter(w => !(w.spec.project === event.project && w.spec.name === event.workload));
    return rest.length === workloads.length ? workloads : rest;
  }
  const at = workloads.findIndex(w => w.uid === object.uid);
  if (at < 0) {
    return [...workloads, object];
  }
  const out = workloads.slice();
  out[at] = object;
  return out;
}

/**
 * At most one call of `run` per `intervalMs`: a call inside the interval is put off to its
 * end (one for however many came meanwhile). Time and timers are passed in, so that the
 * tests drive them.
 */
export class RateGate {
  constructor(
    private readonly run: () => void,
    private readonly intervalMs: number,
    private readonly now: () => number = () => Date.now(),
    private readonly later: (f: () => void, ms: number) => unknown = (f, ms) => setTimeout(f, ms)
  ) {}

  /** Ask for a run: now if the last was long enough ago, else once at the end of the interval. */
  request(): void {
    if (this._waiting) {
      return;
    }
    const wait = this._last === null ? 0 : this._last + this.intervalMs - this.now();
    if (wait <= 0) {
      this._fire();
      return;
    }
    this._waiting = true;
    this.later(() => {
      this._waiting = false;
      this._fire();
    }, wait);
  }

  private _fire(): void {
    this._last = this.now();
    this.run();
  }

  private _last: number | null = null;
  private _waiting = false;
}
