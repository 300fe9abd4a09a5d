import { quotaBar } from '../logic/quota';

describe('quotaBar', () => {
  it('puts every marker on one scale', () => {
    const bar = quotaBar({ name: 'p', deserved: { gpu: 2 }, limit: { gpu: null }, allocated: { gpu: 1 }, fair_share: { gpu: 2 } }, 4);
    expect(bar.scale).toBe(4);
    expect(bar.allocatedPct).toBe(25);
    expect(bar.deservedPct).toBe(50);
    expect(bar.fairSharePct).toBe(50);
    expect(bar.limitPct).toBeNull();
    expect(bar.overPct).toBe(0);
    expect(bar.summary).toBe('1 of 2 GPUs deserved in use · fair share 2 · no limit');
  });
  it('shows the part over quota and a limit', () => {
    const bar = quotaBar({ name: 'p', deserved: { gpu: 1 }, limit: { gpu: 3 }, allocated: { gpu: 2.5 }, fair_share: null }, 2);
    expect(bar.scale).toBe(3);
    expect(bar.overPct).toBeCloseTo(50);
    expect(bar.limitPct).toBe(100);
    expect(bar.summary).toContain('1.5 over quota');
    expect(bar.summary).toContain('limit 3');
  });
});
