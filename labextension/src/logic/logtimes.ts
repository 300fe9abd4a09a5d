/**
 * A log read with `?timestamps=true` (each line after `<RFC 3339 time> `, or `- ` where the
 * server recorded none), rendered as a terminal would with each line's time kept beside it.
 * Pure: no DOM.
 *
 * The time is taken off before the line reaches the terminal renderer (a `\r` would
 * otherwise write the bar over it), and given back with the line it starts. A line that
 * the renderer wraps (an endless line) shows its time on its first part only.
 */

import { ISegment, TerminalRenderer } from './terminal';

/** One rendered line and the time it arrived (the server's text), or null. */
export interface ITimedLine {
  segments: ISegment[];
  /** RFC 3339 (UTC) as the server sent it; '-': the server recorded none; null: the line goes on
   * from the one before (a wrap), or came without any time */
  time: string | null;
}

export interface ITimedUpdate {
  /** lines ended since the last feed, oldest first */
  lines: ITimedLine[];
  /** the line being written (possibly empty) */
  current: ITimedLine;
}

/** A prefix longer than this is not one: the text is shown as it came. */
const MAX_PREFIX = 64;
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

interface IPiece {
  /** a line starts with this piece (and this is its time) */
  start: boolean;
  time: string | null;
  text: string;
}

export class TimedLog {
  constructor(private readonly renderer: TerminalRenderer = new TerminalRenderer()) {}

  feed(chunk: string): ITimedUpdate {
    const lines: ITimedLine[] = [];
    let current: ISegment[] | null = null;
    for (const piece of this._split(chunk)) {
      if (piece.start) {
        this._time = piece.time;
        this._shown = false;
      }
      const update = this.renderer.feed(piece.text);
      for (const segments of update.lines) {
        lines.push({ segments, time: this._shown ? null : this._time });
        this._shown = true;
      }
      current = update.current;
    }
    if (current === null) {
      current = this.renderer.feed('').current;
    }
    return { lines, current: { segments: current, time: this._shown ? null : this._time } };
  }

  /** Cut a chunk where lines start, taking each line's time off. */
  private _split(chunk: string): IPiece[] {
    const pieces: IPiece[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this._atStart) {
        const space = chunk.indexOf(' ', i);
        const head = this._prefix + (space < 0 ? chunk.slice(i) : chunk.slice(i, space));
        if (space < 0 && head.length <= MAX_PREFIX && !head.includes('\n')) {
          this._prefix = head; // the time goes on in the next chunk
          break;
        }
        const buffered = this._prefix;
        this._prefix = '';
        this._atStart = false;
        if (space >= 0 && (head === '-' || TIME.test(head))) {
          pieces.push({ start: true, time: head, text: '' });
          i = space + 1;
        } else {
          // not a time: the line as it came (what was held back, then the rest as text)
          pieces.push({ start: true, time: null, text: buffered });
          continue;
        }
      }
      const end = chunk.indexOf('\n', i);
      const stop = end < 0 ? chunk.length : end + 1;
      const text = chunk.slice(i, stop);
      if (pieces.length && !pieces[pieces.length - 1].text && pieces[pieces.length - 1].start) {
        pieces[pieces.length - 1].text = text;
      } else {
        pieces.push({ start: false, time: null, text });
      }
      i = stop;
      if (end >= 0) {
        this._atStart = true;
      }
    }
    return pieces;
  }

  private _atStart = true;
  private _prefix = '';
  private _time: string | null = null;
  private _shown = true;
}

/** What the view shows for a line whose time the server did not record. */
export const NOT_RECORDED = 'not recorded';

/**
 * A server time (`2026-12-07T11:02:11.185918904Z`) as the log view shows it: month, day
 * and time to the millisecond in the browser's time zone, `12-07 12:02:11.185` for UTC+1.
 * `offsetMinutes` is east of UTC (the negated `Date.getTimezoneOffset()` of that moment).
 */
export function formatLogTime(time: string, offsetMinutes: number): string {
  if (time === '-') {
    return NOT_RECORDED;
  }
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$/.exec(time);
  if (!m) {
    return '';
  }
  const millis = Number(((m[7] ?? '') + '000').slice(0, 3));
  const utc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), millis);
  const d = new Date(utc + offsetMinutes * 60_000);
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}.${String(d.getUTCMilliseconds()).padStart(3, '0')}`
  );
}

/** The browser's offset east of UTC, in minutes, at that server time. */
export function localOffsetMinutes(time: string): number {
  const at = Date.parse(time.replace(/(\.\d{3})\d*Z$/, '$1Z'));
  return isNaN(at) ? -new Date().getTimezoneOffset() : -new Date(at).getTimezoneOffset();
}
