import { modeLabel } from '../logic/mode';

describe('modeLabel', () => {
  it('says the scheduler runs in this server', () => {
    expect(modeLabel({ mode: 'embedded' })?.text).toBe('Scheduler: in this Jupyter server');
  });
  it('names the shared service a client forwards to, and its address in the tooltip', () => {
    const label = modeLabel({ mode: 'client', service: { url: 'http://127.0.0.1:10101/services/runai/', name: 'runai' } });
    expect(label?.text).toBe('Scheduler: the shared service "runai"');
    expect(label?.title).toContain('at http://127.0.0.1:10101/services/runai/');
    expect(modeLabel({ mode: 'client', service: { url: null, name: null } })?.text).toBe('Scheduler: the shared service');
  });
  it('says when this server is the shared service', () => {
    expect(modeLabel({ mode: 'service', service: { name: 'runai' } })?.text).toBe('Scheduler: the shared service "runai" (this server)');
  });
  it('shows nothing for a server that does not say', () => {
    expect(modeLabel({})).toBeNull();
    expect(modeLabel(null)).toBeNull();
  });
});
