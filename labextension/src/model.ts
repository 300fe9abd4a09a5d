/**
 * The sidebar's state: server info, projects, workloads and nodes, kept fresh by the server's
 * event stream, with a fallback poll that stands by while no view of it is visible.
 *
 * Each live event of a workload carries the workload (`object`): the list is patched from it
 * (logic/live.ts) and nothing is read again, but projects and nodes (their allocations follow
 * the workloads), at most once per `SIDE_REFRESH_MS`. The whole state is read again only when
 * the stream cannot be followed: on connecting, after an overflow or a reset, and for an
 * event without its workload (one replayed from the store).
 */

import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI, postJSON, streamText, RunaiApiError } from './api';
import { ACCESS_REFRESH_MS, AccessWatch, IAccessMe } from './logic/access';
import { IEffectivePolicy } from './logic/policy';
import { DEFAULT_SETTINGS, ISidebarSettings } from './logic/settings';
import { applyEvent, RateGate } from './logic/live';
import { SseParser } from './logic/sse';
import { ICredentialView, IDataSource, IInfo, INode, IProject, IRunaiEvent, IWorkload, IWorkloadWithEvents } from './logic/types';

export type StreamState = 'connecting' | 'live' | 'polling';

/** projects and nodes are read again at most this often while events come (ms) */
export const SIDE_REFRESH_MS = 2000;
/** workloads asked for per page when the list is read whole */
const LIST_PAGE = 1000;
/** the most pages read for one list (10,000 workloads a page on the server's side) */
const MAX_PAGES = 1000;

export class RunaiModel {
  info: IInfo | null = null;
  projects: IProject[] = [];
  workloads: IWorkload[] = [];
  nodes: INode[] = [];
  error: string | null = null;
  streamState: StreamState = 'connecting';
  loaded = false;
  /** the user's settings (schema/plugin.json), bounded; the defaults until the registry answers */
  settings: ISidebarSettings = { ...DEFAULT_SETTINGS };

  constructor() {
    this._poll = new Poll({
      auto: false,
      factory: () => this.refresh(),
      frequency: this._frequency(),
      name: 'jupyter-runai:refresh',
      standby: () => (this._anyVisible() && !document.hidden ? false : 'when-hidden')
    });
    void this._poll.start();
    // a role granted or revoked at runtime shows without a reload (no event is sent for one)
    this._accessPoll = new Poll({
      auto: false,
      factory: () => this._access.check(),
      frequency: { interval: ACCESS_REFRESH_MS, backoff: false },
      name: 'jupyter-runai:access',
      standby: () => (this._anyVisible() && !document.hidden ? false : 'when-hidden')
    });
    void this._accessPoll.start();
    document.addEventListener('visibilitychange', this._onVisible);
    void this._connect();
  }

  /** The caller's access changed (a role granted or revoked while the page is open). */
  get accessChanged(): ISignal<this, IAccessMe> {
    return this._accessChanged;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get eventReceived(): ISignal<this, IRunaiEvent> {
    return this._eventReceived;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** New settings: the poll takes its intervals at once; views read theirs on settingsChanged. */
  configure(settings: ISidebarSettings): void {
    this.settings = { ...settings };
    this._poll.frequency = this._frequency();
    this._settingsChanged.emit(this.settings);
  }

  get settingsChanged(): ISignal<this, ISidebarSettings> {
    return this._settingsChanged;
  }

  /** Register a view; the poll stands by while none of them is visible. Returns the unregister function. */
  addViewer(isVisible: () => boolean): () => void {
    this._viewers.add(isVisible);
    return () => this._viewers.delete(isVisible);
  }

  /** A view became visible: refresh now rather than at the next tick. */
  wake(): void {
    void this._poll.refresh();
  }

  async refresh(): Promise<void> {
    try {
      const [info, projects, workloads, nodes] = await Promise.all([
        this.info ? Promise.resolve(this.info) : requestAPI<IInfo>('info'),
        requestAPI<{ projects: IProject[] }>('projects'),
        listWorkloads(),
        // a caller whose roles do not show nodes (a researcher) gets 403: the rest still shows
        requestAPI<{ nodes: INode[] }>('nodes').catch(error => {
          if (error instanceof RunaiApiError && error.status === 403) {
            return { nodes: [] as INode[] };
          }
          throw error;
        })
      ]);
      this.info = info;
      this.projects = projects.projects;
      this.workloads = workloads;
      this.nodes = nodes.nodes;
      this.error = null;
      this.loaded = true;
    } catch (error) {
      this.error = error instanceof RunaiApiError ? error.message : String(error);
      this._changed.emit();
      throw error; // the poll backs off
    }
    this._changed.emit();
  }

  /** Projects and nodes again (what the workloads' events change in them), not the workloads. */
  async refreshSide(): Promise<void> {
    try {
      const [projects, nodes] = await Promise.all([
        requestAPI<{ projects: IProject[] }>('projects'),
        requestAPI<{ nodes: INode[] }>('nodes').catch(error => {
          if (error instanceof RunaiApiError && error.status === 403) {
            return { nodes: [] as INode[] };
          }
          throw error;
        })
      ]);
      this.projects = projects.projects;
      this.nodes = nodes.nodes;
    } catch {
      return; // the poll or the next event tries again
    }
    this._changed.emit();
  }

  /** Re-read the form defaults (after a change of cluster or policy). */
  async reloadInfo(): Promise<IInfo> {
    this.info = await requestAPI<IInfo>('info');
    return this.info;
  }

  workload(project: string, name: string): IWorkload | undefined {
    return this.workloads.find(w => w.spec.project === project && w.spec.name === name);
  }

  async submit(spec: unknown): Promise<IWorkload> {
    const w = await postJSON<IWorkload>('workloads', spec);
    this._soon();
    return w;
  }

  /** uids of the workloads this page asked to stop or delete (their end is no news: logic/notify.ts) */
  readonly requested = new Set<string>();

  /** Forget the requests for workloads that are gone (the set stays as small as the list). */
  forgetRequests(present: ReadonlyMap<string, unknown>): void {
    for (const uid of Array.from(this.requested)) {
      if (!present.has(uid)) {
        this.requested.delete(uid);
      }
    }
  }

  /** Ask the server to stop or delete; the workload's end is then no news, unless the server refused. */
  private async _request(project: string, name: string, send: () => Promise<unknown>): Promise<void> {
    const uid = this.workload(project, name)?.uid;
    if (uid) {
      this.requested.add(uid);
    }
    try {
      await send();
    } catch (error) {
      if (uid) {
        this.requested.delete(uid);
      }
      throw error;
    }
    this._soon();
  }

  stop(project: string, name: string): Promise<void> {
    return this._request(project, name, () => postJSON(`workloads/${encodeURIComponent(project)}/${encodeURIComponent(name)}/stop`, {}));
  }

  async resume(project: string, name: string): Promise<void> {
    await postJSON(`workloads/${encodeURIComponent(project)}/${encodeURIComponent(name)}/resume`, {});
    this._soon();
  }

  remove(project: string, name: string): Promise<void> {
    return this._request(project, name, () => requestAPI(`workloads/${encodeURIComponent(project)}/${encodeURIComponent(name)}`, { method: 'DELETE' }));
  }

  /** One workload with its latest events (`runai describe`). */
  getWorkload(project: string, name: string, events = 50): Promise<IWorkloadWithEvents> {
    return requestAPI<IWorkloadWithEvents>(`${workloadPath(project, name)}?events=${events}`);
  }

  /**
   * Who the caller is (`GET access/me`): its roles and whether it administers the cluster (the
   * Admin view shows for admins only; the server refuses anyone else anyway). Read once, then
   * again every `ACCESS_REFRESH_MS` while a view is visible, when the page becomes visible again
   * and when the event stream reconnects:
   * `accessChanged` tells the views when it changed.
   */
  accessMe(): Promise<IAccessMe> {
    return this._access.current();
  }

  /** Read the caller's access again now (`accessChanged` follows when it changed). */
  checkAccess(): Promise<void> {
    return this._access.check();
  }

  /** The defaults and rules a submission of `kind` to `project` gets (`GET policies/effective`). */
  effectivePolicy(project: string, kind: string): Promise<IEffectivePolicy> {
    return requestAPI<IEffectivePolicy>(`policies/effective?project=${encodeURIComponent(project)}&kind=${encodeURIComponent(kind)}`);
  }

  async dataSources(project: string): Promise<IDataSource[]> {
    return (await requestAPI<{ data_sources: IDataSource[] }>(`${projectPath(project)}/data-sources`)).data_sources;
  }

  async credentials(project: string): Promise<ICredentialView[]> {
    return (await requestAPI<{ credentials: ICredentialView[] }>(`${projectPath(project)}/credentials`)).credentials;
  }

  async addDataSource(project: string, body: unknown): Promise<IDataSource> {
    const created = await postJSON<IDataSource>(`${projectPath(project)}/data-sources`, body);
    this._projectDataChanged.emit(project);
    return created;
  }

  /** The body holds secret values: it goes to the server and nowhere else (no log, no state). */
  async addCredential(project: string, body: unknown): Promise<ICredentialView> {
    const created = await postJSON<ICredentialView>(`${projectPath(project)}/credentials`, body);
    this._projectDataChanged.emit(project);
    return created;
  }

  async deleteDataSource(project: string, name: string): Promise<void> {
    await requestAPI(`${projectPath(project)}/data-sources/${encodeURIComponent(name)}`, { method: 'DELETE' });
    this._projectDataChanged.emit(project);
  }

  async deleteCredential(project: string, name: string): Promise<void> {
    await requestAPI(`${projectPath(project)}/credentials/${encodeURIComponent(name)}`, { method: 'DELETE' });
    this._projectDataChanged.emit(project);
  }

  /** A project's data sources or credentials changed (from this page). */
  get projectDataChanged(): ISignal<this, string> {
    return this._projectDataChanged;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._abort?.abort();
    this._poll.dispose();
    this._accessPoll.dispose();
    document.removeEventListener('visibilitychange', this._onVisible);
    Signal.clearData(this);
  }

  /** A live event: patch the list from the workload it carries, or read everything again. */
  private _apply(event: IRunaiEvent): void {
    const next = this.loaded ? applyEvent(this.workloads, event) : null;
    if (next === null) {
      this._soon();
      return;
    }
    if (next !== this.workloads) {
      this.workloads = next;
      this._changedSoon();
    }
    this._side.request();
  }

  /** Tell the views shortly (a burst of events: one redraw). */
  private _changedSoon(): void {
    if (this._emitTimer !== null) {
      return;
    }
    this._emitTimer = window.setTimeout(() => {
      this._emitTimer = null;
      if (!this._disposed) {
        this._changed.emit();
      }
    }, 50);
  }

  /** Refresh shortly (events come in bursts: one refresh for a burst). */
  private _soon(): void {
    if (this._timer !== null) {
      return;
    }
    this._timer = window.setTimeout(() => {
      this._timer = null;
      this.refresh().catch(() => undefined);
    }, 120);
  }

  /** the poll: slow while the event stream is live, fast while it is down, backing off on errors */
  private _frequency(): { interval: number; backoff: boolean; max: number } {
    const s = this.settings;
    return { interval: this.streamState === 'live' ? s.livePollMs : s.fallbackPollMs, backoff: true, max: s.maxBackoffMs };
  }

  private _anyVisible(): boolean {
    for (const v of this._viewers) {
      if (v()) {
        return true;
      }
    }
    return false;
  }

  private _setStream(state: StreamState): void {
    if (this.streamState !== state) {
      this.streamState = state;
      this._poll.frequency = this._frequency();
      this._changed.emit();
    }
  }

  /** The event stream, reconnected with backoff; while it is down the poll runs at its fast rate. */
  private async _connect(): Promise<void> {
    let delay = 1000;
    const parser = new SseParser();
    while (!this._disposed) {
      this._abort = new AbortController();
      const since = parser.lastId ? `?since=${encodeURIComponent(parser.lastId)}` : '';
      try {
        this._setStream('connecting');
        await streamText(
          `events${since}`,
          text => {
            if (this.streamState !== 'live') {
              if (this.streamState !== 'connecting' || parser.lastId) {
                void this._access.check(); // connected again: roles may have changed meanwhile
              }
              this._setStream('live');
              this._soon();
              delay = 1000;
            }
            for (const message of parser.feed(text)) {
              // 'overflow': the server ends this stream, and the loop below reconnects
              // after the last id; 'reset': events since that id are lost. Neither is a
              // workload's event; both mean "reload", which _soon() does.
              if (message.event === 'overflow' || message.event === 'reset') {
                this._soon();
                continue;
              }
              let event: IRunaiEvent;
              try {
                event = JSON.parse(message.data) as IRunaiEvent;
              } catch {
                continue; // not an event of ours
              }
              this._apply(event);
              this._eventReceived.emit(event);
            }
          },
          this._abort.signal
        );
      } catch {
        // the server went away or refused: poll until it is back
      }
      if (this._disposed) {
        return;
      }
      this._setStream('polling');
      await new Promise(resolve => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30000);
    }
  }

  private _changed = new Signal<this, void>(this);
  private _projectDataChanged = new Signal<this, string>(this);
  private _settingsChanged = new Signal<this, ISidebarSettings>(this);
  private _eventReceived = new Signal<this, IRunaiEvent>(this);
  private _viewers = new Set<() => boolean>();
  private _poll: Poll;
  private _abort: AbortController | null = null;
  private _timer: number | null = null;
  private _emitTimer: number | null = null;
  private _side = new RateGate(() => void this.refreshSide(), SIDE_REFRESH_MS);
  private _disposed = false;
  private _accessPoll: Poll;
  /** back to the page (after asking an admin for a role, say): read the caller's access again */
  private _onVisible = (): void => {
    if (!document.hidden) {
      void this._access.check();
    }
  };
  private _accessChanged = new Signal<this, IAccessMe>(this);
  private _access = new AccessWatch(
    () => requestAPI<IAccessMe>('access/me'),
    me => {
      if (!this._disposed) {
        this._accessChanged.emit(me);
      }
    }
  );
}

export type { IAccessMe };

/** Every workload the caller may see, read a page at a time (`limit` and `continue`). */
async function listWorkloads(): Promise<IWorkload[]> {
  let out: IWorkload[] = [];
  let token: string | null = null;
  for (let pages = 0; pages < MAX_PAGES; pages++) {
    const query: string = `workloads?limit=${LIST_PAGE}` + (token ? `&continue=${encodeURIComponent(token)}` : '');
    const page: { workloads: IWorkload[]; continue?: string | null } = await requestAPI(query);
    out = out.concat(page.workloads);
    token = page.continue ?? null;
    if (!token) {
      break;
    }
  }
  return out;
}

function projectPath(project: string): string {
  return `projects/${encodeURIComponent(project)}`;
}

function workloadPath(project: string, name: string): string {
  return `workloads/${encodeURIComponent(project)}/${encodeURIComponent(name)}`;
}
