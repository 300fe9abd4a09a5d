/** Notifications (JupyterLab's Notification API) when a workload of the user's succeeds, fails,
 * is stopped by someone or something else, or is evicted; each with an action that opens it.
 * What is news is decided in logic/notify.ts. */

import { Notification } from '@jupyterlab/apputils';

import { IWatched, noticesFor } from './logic/notify';
import { IWorkload } from './logic/types';
import { RunaiModel } from './model';

export interface INoticeCommands {
  openDetails: (project: string, name: string) => void;
  openLogs: (project: string, name: string) => void;
  showPanel: () => void;
}

/** Watch the model's refreshes and notify what changed; returns the function that stops it. */
export function notifyWorkloadChanges(model: RunaiModel, commands: INoticeCommands): () => void {
  let watched: Map<string, IWatched> | null = null;
  let seen: IWorkload[] | null = null;
  const onChange = () => {
    // a refresh replaces the list; other changes (the stream's state, an error) leave it
    if (!model.loaded || model.error || model.workloads === seen) {
      return;
    }
    seen = model.workloads;
    const result = noticesFor(watched, model.workloads, {
      user: model.info?.user ?? null,
      notify: model.settings.notifications,
      requested: model.requested
    });
    watched = result.watched;
    model.forgetRequests(result.watched);
    for (const n of result.notices) {
      const actions: Notification.IAction[] = n.name
        ? [{ label: 'Details', caption: `Open ${n.project}/${n.name}`, callback: () => commands.openDetails(n.project, n.name) }]
        : [{ label: 'Show', caption: 'Show the GPU workloads panel', callback: () => commands.showPanel() }];
      if (n.name && (n.kind === 'failed' || n.kind === 'succeeded')) {
        actions.push({ label: 'Logs', caption: `Read the output of ${n.name}`, callback: () => commands.openLogs(n.project, n.name) });
      }
      Notification.emit(n.message, n.type, { autoClose: n.type === 'success' || n.type === 'info' ? 6000 : 15000, actions });
    }
  };
  model.changed.connect(onChange);
  return () => model.changed.disconnect(onChange);
}
