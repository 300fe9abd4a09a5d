/**
 * Turns a pod's raw output into lines as a terminal would show them. Pure: no DOM.
 *
 * - `\n` ends a line; `\r` moves back to the start of the line, and what follows
 *   overwrites it character by character (a tqdm progress bar stays one line that
 *   updates); `\b` moves back one character.
 * - ANSI SGR sequences (`ESC [ ... m`) become styles: bold, dim, italic, underline,
 *   inverse, the 16 colours (as classes the theme can colour), 256 colours and 24-bit
 *   colours (as CSS). `ESC [ K` erases to the end of the line (`1K`, `2K` as a terminal).
 *   Every other escape sequence (cursor moves, OSC titles and links, charset switches)
 *   is dropped, as are other control characters but the tab.
 * - Output arrives in chunks cut anywhere: an escape sequence split between two
 *   chunks waits for its end.
 */

/** A run of characters in one style. */
export interface ISegment {
  text: string;
  /** class names: jp-RunaiAnsi-bold, jp-RunaiAnsi-fg-1, jp-RunaiAnsi-bg-12, ... */
  classes: string[];
  /** inline CSS for 256 and 24-bit colours ('' for none) */
  css: string;
}

/** What one feed() changed: the lines it ended, and the line still open. */
export interface ITerminalUpdate {
  /** lines ended by `\n` since the last feed, oldest first */
  lines: ISegment[][];
  /** the line being written (possibly empty); replaces the previous open line */
  current: ISegment[];
}

interface IStyle {
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  inverse: boolean;
  fg: string; // '' default, '0'..'15' a palette class, or a CSS colour
  bg: string;
}

const PLAIN: IStyle = { bold: false, dim: false, italic: false, underline: false, inverse: false, fg: '', bg: '' };

/** The 6x6x6 cube and the grey ramp of the 256-colour palette, as CSS. */
function color256(n: number): string {
  if (n < 16) {
    return String(n);
  }
  if (n < 232) {
    const i = n - 16;
    const level = (v: number) => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${level(Math.floor(i / 36))}, ${level(Math.floor(i / 6) % 6)}, ${level(i % 6)})`;
  }
  const grey = 8 + (n - 232) * 10;
  return `rgb(${grey}, ${grey}, ${grey})`;
}

/** Apply the parameters of one SGR sequence to a style. */
export function applySgr(style: IStyle, params: string): IStyle {
  const s = { ...style };
  const codes = params === '' ? [0] : params.split(/[;:]/).map(p => (p === '' ? 0 : Number(p)));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) {
      Object.assign(s, PLAIN);
    } else if (c === 1) {
      s.bold = true;
    } else if (c === 2) {
      s.dim = true;
    } else if (c === 3) {
      s.italic = true;
    } else if (c === 4) {
      s.underline = true;
    } else if (c === 7) {
      s.inverse = true;
    } else if (c === 22) {
      s.bold = false;
      s.dim = false;
    } else if (c === 23) {
      s.italic = false;
    } else if (c === 24) {
      s.underline = false;
    } else if (c === 27) {
      s.inverse = false;
    } else if (c >= 30 && c <= 37) {
      s.fg = String(c - 30);
    } else if (c >= 90 && c <= 97) {
      s.fg = String(c - 90 + 8);
    } else if (c === 39) {
      s.fg = '';
    } else if (c >= 40 && c <= 47) {
      s.bg = String(c - 40);
    } else if (c >= 100 && c <= 107) {
      s.bg = String(c - 100 + 8);
    } else if (c === 49) {
      s.bg = '';
    } else if (c === 38 || c === 48) {
      let value: string | null = null;
      if (codes[i + 1] === 5 && i + 2 < codes.length) {
        const n = codes[i + 2];
        value = Number.isInteger(n) && n >= 0 && n <= 255 ? color256(n) : null;
        i += 2;
      } else if (codes[i + 1] === 2 && i + 4 < codes.length) {
        const [r, g, b] = codes.slice(i + 2, i + 5).map(v => Math.max(0, Math.min(255, v | 0)));
        value = `rgb(${r}, ${g}, ${b})`;
        i += 4;
      } else {
        break; // malformed: ignore the rest of this sequence
      }
      if (value !== null) {
        if (c === 38) {
          s.fg = value;
        } else {
          s.bg = value;
        }
      }
    }
    // anything else (blink, fonts, ...) is ignored
  }
  return s;
}

function styleKey(s: IStyle): string {
  return `${+s.bold}${+s.dim}${+s.italic}${+s.underline}${+s.inverse}|${s.fg}|${s.bg}`;
}

function styleParts(s: IStyle): { classes: string[]; css: string } {
  const classes: string[] = [];
  const css: string[] = [];
  let fg = s.fg;
  let bg = s.bg;
  if (s.inverse) {
    classes.push('jp-RunaiAnsi-inverse');
    [fg, bg] = [bg, fg];
  }
  if (s.bold) {
    classes.push('jp-RunaiAnsi-bold');
  }
  if (s.dim) {
    classes.push('jp-RunaiAnsi-dim');
  }
  if (s.italic) {
    classes.push('jp-RunaiAnsi-italic');
  }
  if (s.underline) {
    classes.push('jp-RunaiAnsi-underline');
  }
  for (const [kind, value] of [
    ['fg', fg],
    ['bg', bg]
  ]) {
    if (/^\d+$/.test(value)) {
      classes.push(`jp-RunaiAnsi-${kind}-${value}`);
    } else if (value) {
      css.push(`${kind === 'fg' ? 'color' : 'background-color'}: ${value}`);
    }
  }
  return { classes, css: css.join('; ') };
}

/** A line that grows past this many characters without a line end is ended there (as a terminal wraps). */
export const MAX_LINE_CHARS = 65_536;

export class TerminalRenderer {
  /** `maxLine`: where an endless line is cut, so that one line of output cannot grow without bound. */
  constructor(private readonly maxLine: number = MAX_LINE_CHARS) {}

  /**
   * Feed the next chunk of output; returns the lines it ended and the open line. A chunk
   * may end anywhere, inside an escape sequence or between `\r` and `\n`.
   */
  feed(chunk: string): ITerminalUpdate {
    const text = this._pending + chunk;
    this._pending = '';
    const lines: ISegment[][] = [];
    let i = 0;
    while (i < text.length) {
      const ch = text[i];
      if (ch === '\n') {
        lines.push(this._segments());
        this._chars = [];
        this._styles = [];
        this._cursor = 0;
        i++;
      } else if (ch === '\r') {
        this._cursor = 0;
        i++;
      } else if (ch === '\b') {
        this._cursor = Math.max(0, this._cursor - 1);
        i++;
      } else if (ch === '\x1b') {
        const end = this._escapeEnd(text, i);
        if (end < 0) {
          this._pending = text.slice(i); // the sequence goes on in the next chunk
          break;
        }
        this._escape(text.slice(i, end));
        i = end;
      } else if (ch < ' ' && ch !== '\t') {
        i++; // bell, form feed and other controls: nothing a log view can show
      } else if (ch === '\x7f' || (ch >= '\x80' && ch <= '\x9f')) {
        i++; // DEL and the 8-bit controls
      } else {
        this._put(ch);
        i++;
        if (this._chars.length >= this.maxLine) {
          // an endless line (no \n, or a \r-less stream of text): wrap it here
          lines.push(this._segments());
          this._chars = [];
          this._styles = [];
          this._cursor = 0;
        }
      }
    }
    return { lines, current: this._segments() };
  }

  /** The end (exclusive) of the escape sequence starting at `start`, or -1 if it is cut off. */
  private _escapeEnd(text: string, start: number): number {
    if (start + 1 >= text.length) {
      return -1;
    }
    const kind = text[start + 1];
    if (kind === '[') {
      // CSI: parameter and intermediate bytes, then one final byte in @..~
      for (let j = start + 2; j < text.length; j++) {
        const c = text.charCodeAt(j);
        if (c >= 0x40 && c <= 0x7e) {
          return j + 1;
        }
        if (c < 0x20 || c > 0x3f) {
          if (!(c >= 0x20 && c <= 0x2f)) {
            return j; // not a CSI byte: the sequence is broken, drop what came so far
          }
        }
      }
      return text.length - start > 64 ? text.length : -1; // a runaway sequence is dropped
    }
    if (kind === ']' || kind === 'P' || kind === '_' || kind === '^' || kind === 'X') {
      // OSC and other strings: end at BEL or ESC \
      for (let j = start + 2; j < text.length; j++) {
        if (text[j] === '\x07') {
          return j + 1;
        }
        if (text[j] === '\x1b' && j + 1 < text.length && text[j + 1] === '\\') {
          return j + 2;
        }
        if (text[j] === '\n') {
          return j; // never swallow output past a line end
        }
      }
      return text.length - start > 4096 ? text.length : -1;
    }
    if (kind >= ' ' && kind <= '/') {
      // ESC ( B and the like: intermediates then one final byte
      return start + 2 < text.length ? start + 3 : -1;
    }
    return start + 2; // ESC 7, ESC =, ...
  }

  private _escape(seq: string): void {
    if (seq[1] !== '[') {
      return;
    }
    const final = seq[seq.length - 1];
    const params = seq.slice(2, -1);
    if (final === 'm' && /^[\d;:]*$/.test(params)) {
      this._style = applySgr(this._style, params);
    } else if (final === 'K') {
      const mode = params === '' ? 0 : Number(params);
      if (mode === 0) {
        this._chars.length = Math.min(this._chars.length, this._cursor);
        this._styles.length = this._chars.length;
      } else if (mode === 1) {
        for (let j = 0; j < Math.min(this._cursor + 1, this._chars.length); j++) {
          this._chars[j] = ' ';
          this._styles[j] = '';
        }
      } else if (mode === 2) {
        this._chars = this._chars.map(() => ' ');
        this._styles = this._styles.map(() => '');
      }
    } else if (final === 'G') {
      // cursor to column n (1-based) on this line
      this._cursor = Math.max(0, (Number(params) || 1) - 1);
    }
    // cursor moves between lines, screen clears, modes: dropped
  }

  private _put(ch: string): void {
    const key = styleKey(this._style);
    if (!(key in this._styleTable)) {
      this._styleTable[key] = this._style;
    }
    while (this._chars.length < this._cursor) {
      this._chars.push(' ');
      this._styles.push('');
    }
    this._chars[this._cursor] = ch;
    this._styles[this._cursor] = key === PLAIN_KEY ? '' : key;
    this._cursor++;
  }

  private _segments(): ISegment[] {
    const out: ISegment[] = [];
    let start = 0;
    for (let j = 1; j <= this._chars.length; j++) {
      if (j === this._chars.length || this._styles[j] !== this._styles[start]) {
        const key = this._styles[start];
        const parts = key ? styleParts(this._styleTable[key]) : { classes: [], css: '' };
        out.push({ text: this._chars.slice(start, j).join(''), ...parts });
        start = j;
      }
    }
    return out;
  }

  private _pending = '';
  private _chars: string[] = [];
  private _styles: string[] = [];
  private _cursor = 0;
  private _style: IStyle = PLAIN;
  private _styleTable: Record<string, IStyle> = {};
}

const PLAIN_KEY = styleKey(PLAIN);

/** The text of a rendered line. */
export function lineText(line: ISegment[]): string {
  return line.map(s => s.text).join('');
}

/** Whether a line holds the search text (case-insensitive; an empty search matches nothing). */
export function lineMatches(text: string, query: string): boolean {
  return query !== '' && text.toLowerCase().includes(query.toLowerCase());
}
