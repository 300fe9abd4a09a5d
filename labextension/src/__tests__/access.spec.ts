import { AccessWatch, IAccessMe, sameAccess } from '../logic/access';

const researcher: IAccessMe = {
  user: 'rae', groups: ['cat-people'], admin: false, view_nodes: false,
  roles: [{ role: 'researcher', scope: 'project', name: 'cats' }], submit_projects: ['cats'], view_projects: ['cats']
};
const admin: IAccessMe = { ...researcher, admin: true, view_nodes: true, roles: [...researcher.roles, { role: 'admin', scope: 'cluster', name: null }] };

describe('the caller access, read again while the page is open', () => {
  it('tells a change of admin, roles or projects, not the same access in another order', () => {
    expect(sameAccess(researcher, { ...researcher, submit_projects: ['cats'] })).toBe(true);
    const two = { ...researcher, roles: [{ role: 'viewer', scope: 'project', name: 'dogs' }, ...researcher.roles] };
    expect(sameAccess(two, { ...two, roles: [...two.roles].reverse() })).toBe(true);
    expect(sameAccess(researcher, admin)).toBe(false);
    expect(sameAccess(researcher, two)).toBe(false);
    expect(sameAccess(researcher, { ...researcher, view_nodes: true })).toBe(false);
    expect(sameAccess(researcher, { ...researcher, submit_projects: ['cats', 'dogs'] })).toBe(false);
  });

  it('reads once for every asker, then tells each grant or revoke found by a later read', async () => {
    const answers = [researcher, researcher, admin, admin, researcher];
    let reads = 0;
    const told: boolean[] = [];
    const watch = new AccessWatch(async () => answers[reads++], me => told.push(me.admin));
    const [a, b] = await Promise.all([watch.current(), watch.current()]);
    expect(a.admin).toBe(false);
    expect(b).toBe(a);
    expect(reads).toBe(1);
    await watch.check(); // the same: nothing told
    expect(told).toEqual([]);
    await watch.check(); // admin granted at runtime
    expect(told).toEqual([true]);
    expect((await watch.current()).admin).toBe(true);
    await watch.check();
    await watch.check(); // revoked
    expect(told).toEqual([true, false]);
    expect(reads).toBe(5);
  });

  it('keeps what it knew when a read fails, and asks again', async () => {
    let fail = true;
    const told: IAccessMe[] = [];
    const watch = new AccessWatch(async () => {
      if (fail) {
        throw new Error('server away');
      }
      return admin;
    }, me => told.push(me));
    await expect(watch.current()).rejects.toThrow('server away');
    await watch.check();
    expect(told).toEqual([]);
    fail = false;
    expect((await watch.current()).admin).toBe(true);
    await watch.check();
    expect(told).toEqual([]);
  });
});
