/** When a logs tab (re)starts its stream. Pure functions. */

import { IPodStatus } from './types';

/**
 * A followed stream that ended starts again when its pod runs again (a resume, a retry):
 * the pod is Running with a start time other than the one of the run whose log ended. A
 * stream that is still running is never restarted (that would cancel it and read it twice).
 */
export function shouldRestartLogs(
  streaming: boolean,
  follow: boolean,
  pod: Pick<IPodStatus, 'phase' | 'started_at'> | undefined,
  endedStart: string | null
): boolean {
  if (streaming || !follow || !pod) {
    return false;
  }
  return !!pod.started_at && pod.started_at !== endedStart && pod.phase === 'Running';
}
