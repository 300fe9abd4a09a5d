/** Which changes of the user's workloads become a notification: a workload of theirs that
 * succeeded, failed, was stopped (not from this page) or evicted since the last refresh. One
 * notice per change; nothing for what was already so at the first load. Pure. */

import { isFinished } from './format';
import { NotifyOn } from './settings';
import { IWorkload } from './types';
import { evictionOf } from './workloads';

export type NoticeKind = 'succeeded' | 'failed' | 'stopped' | 'evicted';

export interface INotice {
  kind: NoticeKind;
  project: string;
  name: string;
  /** what the notification says */
  message: string;
  /** Notification.emit's type */
  type: 'success' | 'error' | 'warning' | 'info';
}

/** what a workload was at the last refresh, by its uid (a name reused after a delete is another one) */
export interface IWatched {
  phase: string;
  evicted: boolean;
}

export interface INoticeContext {
  /** the user this page runs as (`info.user`); null: unknown, nobody's workloads notify */
  user: string | null;
  notify: NotifyOn;
  /** uids this page asked to stop or delete: their end is no news */
  requested?: ReadonlySet<string>;
}

/** at most this many notifications for one refresh; the rest are summed up in one more */
export const MAX_NOTICES = 3;

const FAILURES: NoticeKind[] = ['failed', 'evicted'];

/**
 * The notices for the change from `previous` (null: the first load, which tells nothing) to
 * `workloads`, and what to remember for the next refresh.
 */
export function noticesFor(
  previous: ReadonlyMap<string, IWatched> | null,
  workloads: IWorkload[],
  context: INoticeContext
): { notices: INotice[]; watched: Map<string, IWatched> } {
  const watched = new Map<string, IWatched>();
  const found: INotice[] = [];
  for (const w of workloads) {
    const now: IWatched = { phase: w.status.phase, evicted: w.status.phase === 'Pending' && evictionOf(w) !== null };
    watched.set(w.uid, now);
    if (previous === null || !context.user || w.submitted_by !== context.user) {
      continue;
    }
    const before = previous.get(w.uid);
    const notice = change(before, now, w, context);
    if (notice && (context.notify === 'all' || (context.notify === 'failures' && FAILURES.includes(notice.kind)))) {
      found.push(notice);
    }
  }
  if (context.notify === 'off') {
    return { notices: [], watched };
  }
  if (found.length <= MAX_NOTICES + 1) {
    return { notices: found, watched };
  }
  // a burst (a bulk stop elsewhere, a node lost): the failures first, then one line for the rest
  const ordered = [...found].sort((a, b) => Number(FAILURES.includes(b.kind)) - Number(FAILURES.includes(a.kind)));
  const rest = ordered.slice(MAX_NOTICES);
  const failedRest = rest.filter(n => FAILURES.includes(n.kind)).length;
  const summary: INotice = {
    kind: failedRest ? 'failed' : 'succeeded',
    project: '',
    name: '',
    message: `${rest.length} more of your workloads ended or were evicted${failedRest ? ` (${failedRest} failed or evicted)` : ''}`,
    type: failedRest ? 'error' : 'info'
  };
  return { notices: [...ordered.slice(0, MAX_NOTICES), summary], watched };
}

function change(before: IWatched | undefined, now: IWatched, w: IWorkload, context: INoticeContext): INotice | null {
  const { project, name } = w.spec;
  const label = `${w.spec.kind} ${name}`;
  const why = w.status.message ? `: ${w.status.message}` : '';
  const ended = isFinished(now.phase) && (before === undefined || !isFinished(before.phase));
  if (ended) {
    switch (now.phase) {
      case 'Succeeded':
        return { kind: 'succeeded', project, name, message: `${capitalised(label)} succeeded`, type: 'success' };
      case 'Failed':
        return { kind: 'failed', project, name, message: `${capitalised(label)} failed${why}`, type: 'error' };
      default:
        // stopped: by a rule (idle timeout, max duration) or by someone else; a stop from this page is no news
        if (context.requested?.has(w.uid)) {
          return null;
        }
        return { kind: 'stopped', project, name, message: `${capitalised(label)} was stopped${why}`, type: 'warning' };
    }
  }
  if (now.evicted && !before?.evicted) {
    return { kind: 'evicted', project, name, message: `${capitalised(label)} ${evictionSentence(evictionOf(w))}`, type: 'warning' };
  }
  return null;
}

/**
 * "was evicted and waits again: why", from the row's eviction text ("Evicted (pod d-1): why" or
 * "Evicted to make room for other work: why"), without saying "evicted" twice.
 */
function evictionSentence(eviction: string | null): string {
  const m = /^evicted(?: \(([^)]*)\))?(?: to make room for other work)?\s*:?\s*(.*)$/i.exec(eviction ?? '');
  if (!m) {
    return `was evicted and waits again: ${eviction}`;
  }
  const why = m[2] || 'to make room for other work';
  return `was evicted${m[1] ? ` (${m[1]})` : ''} and waits again: ${why}`;
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
