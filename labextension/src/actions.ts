/** Stop, resume and delete a workload (stop and delete ask first): shared by the panel and the details view. */

import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';

import { IWorkload } from './logic/types';
import { RunaiModel } from './model';

export type WorkloadAction = 'stop' | 'resume' | 'delete';

/** Run the action; stop and delete ask for confirmation first. Resolves true when done. */
export async function runAction(model: RunaiModel, action: WorkloadAction, w: IWorkload): Promise<boolean> {
  const { project, name } = w.spec;
  if (action !== 'resume') {
    const running = w.status.phase === 'Running';
    const body =
      action === 'stop'
        ? `${running ? 'Its pods are ended (SIGTERM, then SIGKILL after the grace period). ' : ''}The workload stays in the list; Resume puts it back in the queue.`
        : `${running ? 'Its pods are ended and ' : ''}it is removed with its logs. This cannot be undone.`;
    const result = await showDialog({
      title: `${action === 'stop' ? 'Stop' : 'Delete'} ${name}?`,
      body,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: action === 'stop' ? 'Stop' : 'Delete' })]
    });
    if (!result.button.accept) {
      return false;
    }
  }
  try {
    if (action === 'stop') {
      await model.stop(project, name);
    } else if (action === 'resume') {
      await model.resume(project, name);
    } else {
      await model.remove(project, name);
    }
    return true;
  } catch (error) {
    await showErrorMessage(`Cannot ${action} ${name}`, error as Error);
    return false;
  }
}
