/** The sidebar's user settings (schema/plugin.json, read through JupyterLab's setting registry):
 * each value checked and bounded here, so a hand-edited setting never sets a zero poll. Pure. */

export type NotifyOn = 'all' | 'failures' | 'off';

export interface ISidebarSettings {
  livePollMs: number;
  fallbackPollMs: number;
  maxBackoffMs: number;
  ageTickMs: number;
  detailsRefreshMs: number;
  notifications: NotifyOn;
  defaultView: 'cards' | 'table';
}

/** The defaults, the same as schema/plugin.json's. */
export const DEFAULT_SETTINGS: ISidebarSettings = {
  livePollMs: 30_000,
  fallbackPollMs: 3_000,
  maxBackoffMs: 60_000,
  ageTickMs: 5_000,
  detailsRefreshMs: 400,
  notifications: 'all',
  defaultView: 'cards'
};

/** seconds in the settings -> milliseconds, within [min, max] seconds; anything else: the default */
function seconds(value: unknown, fallbackMs: number, min: number, max: number): number {
  if (typeof value !== 'number' || !isFinite(value)) {
    return fallbackMs;
  }
  return Math.round(Math.min(max, Math.max(min, value)) * 1000);
}

/** The settings from the registry's composite (user over defaults); what does not fit is the default. */
export function readSettings(composite: Record<string, unknown> | null | undefined): ISidebarSettings {
  const c = composite ?? {};
  const d = DEFAULT_SETTINGS;
  const fallbackPollMs = seconds(c.fallbackPollSeconds, d.fallbackPollMs, 1, 60);
  return {
    livePollMs: seconds(c.livePollSeconds, d.livePollMs, 5, 600),
    fallbackPollMs,
    // the backoff never waits less than one fallback interval
    maxBackoffMs: Math.max(fallbackPollMs, seconds(c.maxBackoffSeconds, d.maxBackoffMs, 5, 600)),
    ageTickMs: seconds(c.ageTickSeconds, d.ageTickMs, 1, 60),
    detailsRefreshMs: seconds(c.detailsRefreshSeconds, d.detailsRefreshMs, 0.1, 30),
    notifications: c.notifications === 'failures' || c.notifications === 'off' ? c.notifications : 'all',
    defaultView: c.defaultView === 'table' ? 'table' : 'cards'
  };
}
