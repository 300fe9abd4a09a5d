import { ISegment, lineMatches, lineText, TerminalRenderer } from '../logic/terminal';

/** Feed the chunks; every line (ended ones, then the open one if not empty) as text. */
function render(...chunks: string[]): string[] {
  const t = new TerminalRenderer();
  const lines: ISegment[][] = [];
  let current: ISegment[] = [];
  for (const chunk of chunks) {
    const update = t.feed(chunk);
    lines.push(...update.lines);
    current = update.current;
  }
  const out = lines.map(lineText);
  if (lineText(current)) {
    out.push(lineText(current));
  }
  return out;
}

describe('TerminalRenderer', () => {
  it('keeps plain lines as they are', () => {
    expect(render('epoch 1\nepoch 2\n')).toEqual(['epoch 1', 'epoch 2']);
    expect(render('a\tb\n\nc')).toEqual(['a\tb', '', 'c']);
  });

  it('lets a carriage return overwrite the line, as a tqdm progress bar does', () => {
    const bar = (n: number) => `\r${n * 10}%|${'#'.repeat(n)}${' '.repeat(10 - n)}| ${n}/10`;
    const chunks = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(bar);
    expect(render(...chunks, '\n', 'done\n')).toEqual(['100%|##########| 10/10', 'done']);
  });

  it('overwrites character by character: a shorter rewrite leaves the tail', () => {
    expect(render('abcdef\rXY\n')).toEqual(['XYcdef']);
    expect(render('abcdef\rXY\x1b[K\n')).toEqual(['XY']); // erase to end of line
    expect(render('abcdef\r\x1b[2KXY\n')).toEqual(['XY    ']);
    expect(render('abc\b\bZ\n')).toEqual(['aZc']);
  });

  it('reads \\r\\n as one line end, even split across chunks', () => {
    expect(render('one\r\ntwo\r', '\nthree')).toEqual(['one', 'two', 'three']);
  });

  it('reports each update: ended lines and the open line that replaces the last one', () => {
    const t = new TerminalRenderer();
    expect(lineText(t.feed('loss 0.9\n 10%').current)).toBe(' 10%');
    const update = t.feed('\r 20%');
    expect(update.lines).toEqual([]);
    expect(lineText(update.current)).toBe(' 20%');
    const end = t.feed('\n');
    expect(end.lines.map(lineText)).toEqual([' 20%']);
    expect(end.current).toEqual([]);
  });

  it('turns SGR colours and bold into styled segments and reset ends them', () => {
    const t = new TerminalRenderer();
    const [line] = t.feed('\x1b[1;31mERROR\x1b[0m: disk \x1b[32mok\x1b[39m.\n').lines;
    expect(line).toEqual([
      { text: 'ERROR', classes: ['jp-RunaiAnsi-bold', 'jp-RunaiAnsi-fg-1'], css: '' },
      { text: ': disk ', classes: [], css: '' },
      { text: 'ok', classes: ['jp-RunaiAnsi-fg-2'], css: '' },
      { text: '.', classes: [], css: '' }
    ]);
  });

  it('keeps a style across lines until it is reset (as a terminal does)', () => {
    const t = new TerminalRenderer();
    const { lines } = t.feed('\x1b[33mwarn\nstill\x1b[m\nplain\n');
    expect(lines.map(l => l.map(s => s.classes))).toEqual([[['jp-RunaiAnsi-fg-3']], [['jp-RunaiAnsi-fg-3']], [[]]]);
  });

  it('knows bright, background, 256 and 24-bit colours', () => {
    const t = new TerminalRenderer();
    const [a, b, c] = t.feed('\x1b[92;104mx\x1b[0m\n\x1b[38;5;196my\x1b[0m\n\x1b[48;2;10;20;30mz\n').lines;
    expect(a[0].classes).toEqual(['jp-RunaiAnsi-fg-10', 'jp-RunaiAnsi-bg-12']);
    expect(b[0].css).toBe('color: rgb(255, 0, 0)');
    expect(c[0].css).toBe('background-color: rgb(10, 20, 30)');
  });

  it('drops other escape sequences: cursor moves, titles, charsets, C1 controls and bells', () => {
    expect(render('\x1b[2A\x1b[?25lup\x1b]0;title\x07 \x1b]8;;http://x\x1b\\link\x1b(B\x07\x9b!\n')).toEqual(['up link!']);
  });

  it('waits for an escape sequence cut between chunks', () => {
    const t = new TerminalRenderer();
    expect(lineText(t.feed('a\x1b[3').current)).toBe('a');
    expect(lineText(t.feed('1mb\x1b').current)).toBe('ab');
    const { lines } = t.feed('[0mc\n');
    expect(lines.map(lineText)).toEqual(['abc']);
    expect(lines[0].map(s => s.classes)).toEqual([[], ['jp-RunaiAnsi-fg-1'], []]);
  });

  it('never shows a raw escape code, whatever the cut', () => {
    const text = '\x1b[1m\x1b[38;5;82mtrain\x1b[0m \x1b]0;t\x07 10%\r 20%\x1b[K\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const lines = render(text.slice(0, cut), text.slice(cut));
      expect(lines).toEqual([' 20%']);
    }
  });
});

describe('an endless line', () => {
  it('is cut at the limit, as a terminal wraps, so it cannot grow without bound', () => {
    const t = new TerminalRenderer(4);
    const update = t.feed('abcdefghij');
    expect(update.lines.map(lineText)).toEqual(['abcd', 'efgh']);
    expect(lineText(update.current)).toBe('ij');
    // a \r after the cut rewrites only the part still open
    expect(lineText(t.feed('\rX').current)).toBe('Xj');
  });
});

describe('lineMatches', () => {
  it('finds the search text in any case; an empty search matches nothing', () => {
    expect(lineMatches('Epoch 3: loss 0.1', 'LOSS')).toBe(true);
    expect(lineMatches('Epoch 3', 'loss')).toBe(false);
    expect(lineMatches('Epoch 3', '')).toBe(false);
  });
});
