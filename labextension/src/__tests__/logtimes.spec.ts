import { formatLogTime, ITimedLine, TimedLog } from '../logic/logtimes';
import { TerminalRenderer } from '../logic/terminal';

const T1 = '2026-12-07T11:02:11.185918904Z';
const T2 = '2026-12-07T11:02:12.5Z';
const STAMPED = `${T1} epoch 1\n${T2} \r 10%\r\x1b[32m100%\x1b[0m\n- no time recorded\n${T1} last, no newline`;

function text(line: ITimedLine): string {
  return line.segments.map(s => s.text).join('');
}

/** Every line of the whole stream fed in pieces of `size` characters: (time, text). */
function render(stream: string, size: number): [string | null, string][] {
  const log = new TimedLog();
  const out: [string | null, string][] = [];
  let current: ITimedLine = { segments: [], time: null };
  for (let i = 0; i < stream.length; i += size) {
    const update = log.feed(stream.slice(i, i + size));
    out.push(...update.lines.map(l => [l.time, text(l)] as [string | null, string]));
    current = update.current;
  }
  out.push([current.time, text(current)]);
  return out;
}

describe('TimedLog', () => {
  it('takes each line’s time off before the terminal renders it, wherever the chunks are cut', () => {
    const expected = [
      [T1, 'epoch 1'],
      [T2, '100%'], // the bar overwrote itself, not the time
      ['-', 'no time recorded'], // said, not invented
      [T1, 'last, no newline']
    ];
    for (const size of [1, 2, 3, 7, 31, STAMPED.length]) {
      expect(render(STAMPED, size)).toEqual(expected);
    }
  });
  it('keeps the styles the line had', () => {
    const update = new TimedLog().feed(`${T2} \x1b[32mgreen\x1b[0m\n`);
    expect(update.lines[0].time).toBe(T2);
    expect(update.lines[0].segments[0].classes).toContain('jp-RunaiAnsi-fg-2');
  });
  it('gives the time to the first part of a line the renderer wraps', () => {
    const log = new TimedLog(new TerminalRenderer(4));
    const update = log.feed(`${T1} abcdefghij\n`);
    expect(update.lines.map(l => [l.time, text(l)])).toEqual([
      [T1, 'abcd'],
      [null, 'efgh'],
      [null, 'ij']
    ]);
  });
  it('shows a line that comes without a time as it came', () => {
    expect(render('plain line\nanother\n', 3)).toEqual([
      [null, 'plain line'],
      [null, 'another'],
      [null, '']
    ]);
  });
});

describe('formatLogTime', () => {
  it('shows month, day and time to the millisecond in the given zone', () => {
    expect(formatLogTime(T1, 0)).toBe('12-07 11:02:11.185');
    expect(formatLogTime(T1, 60)).toBe('12-07 12:02:11.185');
    expect(formatLogTime('2026-12-31T23:30:00Z', 90)).toBe('01-01 01:00:00.000');
    expect(formatLogTime(T2, -300)).toBe('12-07 06:02:12.500');
  });
  it('says when none was recorded, and shows nothing for what is not a time', () => {
    expect(formatLogTime('-', 0)).toBe('not recorded');
    expect(formatLogTime('yesterday', 0)).toBe('');
  });
});
