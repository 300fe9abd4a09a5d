import { buildCredential, buildDataSource, credentialSummary, dataSourceAccess, dataSourceSource, emptyCredential, emptyDataSource, placeProjectDataErrors } from '../logic/projectdata';
import { projectRows } from '../logic/quota';

describe('data sources', () => {
  it('sends only the fields of its kind', () => {
    expect(buildDataSource({ ...emptyDataSource(), name: ' data ', path: '/srv/data', readOnly: false, target: 'in' })).toEqual({
      name: 'data', kind: 'host_path', path: '/srv/data', read_only: false, target: 'in'
    });
    expect(buildDataSource({ ...emptyDataSource(), name: 'code', kind: 'git', path: '/ignored', url: 'https://x/r.git', revision: 'main' })).toEqual({
      name: 'code', kind: 'git', url: 'https://x/r.git', revision: 'main'
    });
  });

  it('summarises source and access', () => {
    expect(dataSourceSource({ name: 'c', kind: 'git', url: 'https://x/r.git', revision: 'v1' })).toBe('https://x/r.git @ v1');
    expect(dataSourceAccess({ name: 'd', kind: 'host_path', path: '/d', read_only: true })).toBe('read-only');
    expect(dataSourceAccess({ name: 'd', kind: 'host_path', path: '/d', read_only: false })).toBe('read-write');
  });
});

describe('credentials', () => {
  it('builds the data from key/value rows, skipping empty rows', () => {
    const built = buildCredential({ name: 'hf', injectAs: 'env', mountPath: 'ignored', rows: [{ key: ' HF_TOKEN ', value: 's3cret' }, { key: '', value: '' }] });
    expect(built.body).toEqual({ name: 'hf', inject_as: 'env', data: { HF_TOKEN: 's3cret' } });
    const file = buildCredential({ name: 'kube', injectAs: 'file', mountPath: '.kube', rows: [{ key: 'config', value: 'x' }] });
    expect(file.body).toMatchObject({ inject_as: 'file', mount_path: '.kube' });
  });

  it('refuses a value without a key, a repeated key, or no key at all', () => {
    expect(buildCredential({ ...emptyCredential(), rows: [{ key: '', value: 'v' }] }).errors['row.0']).toContain('give this value a key');
    expect(buildCredential({ ...emptyCredential(), rows: [{ key: 'A', value: '1' }, { key: 'A', value: '2' }] }).errors['row.1']).toContain('twice');
    const none = buildCredential(emptyCredential());
    expect(none.body).toBeNull();
    expect(none.errors['row.0']).toContain('at least one');
  });

  it('shows keys, never values', () => {
    expect(credentialSummary({ name: 'hf', inject_as: 'env', keys: ['A', 'B'] })).toBe('variables A, B');
    expect(credentialSummary({ name: 'k', inject_as: 'file', keys: ['config'], mount_path: '.credentials/k' })).toBe('files config in .credentials/k');
  });

  it('puts server errors beside their fields and key rows', () => {
    const body = {
      error: {
        field: 'name', message: 'name: bad',
        errors: [
          { field: 'name', message: 'name: bad' },
          { field: 'data.1BAD', message: 'data.1BAD: keys must be ...' },
          { field: 'read_only', message: 'read_only: no' },
          { field: 'weird', message: 'weird: ?' }
        ]
      }
    };
    const placed = placeProjectDataErrors(body, ['name', 'path'], [{ key: 'OK', value: '' }, { key: '1BAD', value: '' }]);
    expect(placed.byField.name).toEqual(['name: bad']);
    expect(placed.byField['row.1']).toEqual(['data.1BAD: keys must be ...']);
    expect(placed.byField.access).toEqual(['read_only: no']);
    expect(placed.general).toEqual(['weird: ?']);
    expect(placeProjectDataErrors(null, [], [], 'offline').general).toEqual(['offline']);
  });
});

describe('projects overview', () => {
  it('has deserved, allocated, fair share and limit per project', () => {
    const rows = projectRows([
      { name: 'default', department: 'default', deserved: { gpu: 2 }, limit: { gpu: null }, allocated: { gpu: 2.5 }, fair_share: { gpu: 3.25 }, over_quota_weight: 1, workloads: 3 },
      { name: 'team-a', deserved: { gpu: 1 }, limit: { gpu: 1 }, allocated: { gpu: 1 }, fair_share: null }
    ]);
    expect(rows[0]).toMatchObject({ deserved: '2', allocated: '2.5', fairShare: '3.25', limit: 'none', over: true, atLimit: false, workloads: '3' });
    expect(rows[1]).toMatchObject({ fairShare: '—', limit: '1', over: false, atLimit: true });
  });
});
