/** A parser for server-sent events (text/event-stream) fed in chunks, as they arrive. */

export interface ISseMessage {
  id: string | null;
  event: string;
  data: string;
}

/**
 * Feed text chunks; complete messages come back. Comment lines (": keep-alive") are
 * skipped; `data:` lines of one message are joined with newlines (the SSE rules).
 */
export class SseParser {
  private buffer = '';
  lastId: string | null = null;

  feed(chunk: string): ISseMessage[] {
    this.buffer += chunk.replace(/\r\n?/g, '\n');
    const out: ISseMessage[] = [];
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const message = this.parseBlock(block);
      if (message) {
        out.push(message);
      }
    }
    return out;
  }

  private parseBlock(block: string): ISseMessage | null {
    let event = 'message';
    const data: string[] = [];
    let id: string | null = null;
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) {
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) {
        value = value.slice(1);
      }
      if (field === 'event') {
        event = value;
      } else if (field === 'data') {
        data.push(value);
      } else if (field === 'id') {
        id = value;
      }
    }
    if (id !== null) {
      this.lastId = id;
    }
    if (!data.length) {
      return null;
    }
    return { id, event, data: data.join('\n') };
  }
}
