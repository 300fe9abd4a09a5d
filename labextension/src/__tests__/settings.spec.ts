import { DEFAULT_SETTINGS, readSettings } from '../logic/settings';

// the schema the setting registry validates against: its defaults are the ones the code falls back to
declare const require: (path: string) => any;
const schema = require('../../schema/plugin.json');

describe('readSettings', () => {
  it('gives the defaults for no settings', () => {
    expect(readSettings(undefined)).toEqual(DEFAULT_SETTINGS);
    expect(readSettings({})).toEqual(DEFAULT_SETTINGS);
  });

  it('agrees with the schema defaults', () => {
    const defaults: Record<string, unknown> = {};
    for (const [key, prop] of Object.entries<any>(schema.properties)) {
      defaults[key] = prop.default;
    }
    expect(readSettings(defaults)).toEqual(DEFAULT_SETTINGS);
    expect(DEFAULT_SETTINGS.livePollMs).toBe(schema.properties.livePollSeconds.default * 1000);
    expect(DEFAULT_SETTINGS.detailsRefreshMs).toBe(schema.properties.detailsRefreshSeconds.default * 1000);
  });

  it('turns seconds into milliseconds', () => {
    const s = readSettings({ livePollSeconds: 10, fallbackPollSeconds: 2, ageTickSeconds: 1, detailsRefreshSeconds: 1.5 });
    expect(s.livePollMs).toBe(10_000);
    expect(s.fallbackPollMs).toBe(2_000);
    expect(s.ageTickMs).toBe(1_000);
    expect(s.detailsRefreshMs).toBe(1_500);
  });

  it('bounds every interval as the schema does (no zero or negative poll)', () => {
    const low = readSettings({ livePollSeconds: 0, fallbackPollSeconds: -3, ageTickSeconds: 0, detailsRefreshSeconds: 0, maxBackoffSeconds: 0 });
    expect(low.livePollMs).toBe(schema.properties.livePollSeconds.minimum * 1000);
    expect(low.fallbackPollMs).toBe(schema.properties.fallbackPollSeconds.minimum * 1000);
    expect(low.ageTickMs).toBe(1000);
    expect(low.detailsRefreshMs).toBe(100);
    const high = readSettings({ livePollSeconds: 1e9, fallbackPollSeconds: 1e9, maxBackoffSeconds: 1e9 });
    expect(high.livePollMs).toBe(schema.properties.livePollSeconds.maximum * 1000);
    expect(high.fallbackPollMs).toBe(60_000);
    expect(high.maxBackoffMs).toBe(600_000);
  });

  it('never backs off to less than the fallback interval', () => {
    expect(readSettings({ fallbackPollSeconds: 30, maxBackoffSeconds: 5 }).maxBackoffMs).toBe(30_000);
  });

  it('ignores values of the wrong type or outside the choices', () => {
    const s = readSettings({ livePollSeconds: '10', fallbackPollSeconds: NaN, notifications: 'loud', defaultView: 'grid' });
    expect(s.livePollMs).toBe(DEFAULT_SETTINGS.livePollMs);
    expect(s.fallbackPollMs).toBe(DEFAULT_SETTINGS.fallbackPollMs);
    expect(s.notifications).toBe('all');
    expect(s.defaultView).toBe('cards');
    expect(readSettings({ notifications: 'failures', defaultView: 'table' })).toMatchObject({ notifications: 'failures', defaultView: 'table' });
  });
});
