/**
 * Who the caller is (`GET access/me`), kept current: a role granted or revoked while the page is
 * open changes what the page shows (the Admin button, the role-dependent views) without a reload.
 * The server sends no event for a role binding, so the model reads it again on an interval and when
 * its event stream connects again; `AccessWatch` tells only real changes. No JupyterLab imports.
 */

/** `GET access/me` */
export interface IAccessMe {
  user: string;
  groups: string[];
  admin: boolean;
  roles: { role: string; scope: string; name: string | null }[];
  submit_projects: string[];
  view_projects?: string[];
  inference_projects?: string[];
  view_nodes: boolean;
}

/** how often the caller's access is read again while a view of the sidebar is visible (ms) */
export const ACCESS_REFRESH_MS = 30000;

function sorted(values: readonly string[] | undefined): string {
  return JSON.stringify([...(values ?? [])].sort());
}

/** The same access for what the page shows: admin, nodes, roles and the projects of each right. */
export function sameAccess(a: IAccessMe, b: IAccessMe): boolean {
  const roles = (me: IAccessMe) => sorted(me.roles.map(r => `${r.role} ${r.scope} ${r.name ?? ''}`));
  return (
    a.user === b.user &&
    a.admin === b.admin &&
    a.view_nodes === b.view_nodes &&
    roles(a) === roles(b) &&
    sorted(a.submit_projects) === sorted(b.submit_projects) &&
    sorted(a.view_projects) === sorted(b.view_projects) &&
    sorted(a.inference_projects) === sorted(b.inference_projects)
  );
}

/**
 * The caller's access, read once for every view that asks (`current()`), and again on `check()`:
 * `changed` is called with the new access when it differs from the last one read (a failed read
 * changes nothing and is asked again next time).
 */
export class AccessWatch {
  constructor(
    private readonly read: () => Promise<IAccessMe>,
    private readonly changed: (me: IAccessMe) => void
  ) {}

  /** the access as last read (read now when it never was) */
  current(): Promise<IAccessMe> {
    if (!this._pending) {
      this._pending = this.read().then(
        me => {
          this._last = me;
          return me;
        },
        error => {
          this._pending = null; // asked again next time
          throw error;
        }
      );
    }
    return this._pending;
  }

  /** Read it again; tell `changed` when it is not what it was. */
  async check(): Promise<void> {
    let me: IAccessMe;
    try {
      me = await this.read();
    } catch {
      return;
    }
    const before = this._last;
    this._last = me;
    this._pending = Promise.resolve(me);
    if (before === null || !sameAccess(before, me)) {
      this.changed(me);
    }
  }

  private _last: IAccessMe | null = null;
  private _pending: Promise<IAccessMe> | null = null;
}
