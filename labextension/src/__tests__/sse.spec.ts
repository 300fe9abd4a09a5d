import { SseParser } from '../logic/sse';

describe('SseParser', () => {
  it('parses messages split across chunks and skips comments', () => {
    const p = new SseParser();
    expect(p.feed(': connected\n\n')).toEqual([]);
    expect(p.feed('id: 7\nevent: Scheduled\nda')).toEqual([]);
    const out = p.feed('ta: {"id": 7}\n\nid: 8\r\nevent: Started\r\ndata: a\r\ndata: b\r\n\r\n');
    expect(out).toEqual([
      { id: '7', event: 'Scheduled', data: '{"id": 7}' },
      { id: '8', event: 'Started', data: 'a\nb' }
    ]);
    expect(p.lastId).toBe('8');
  });
});
