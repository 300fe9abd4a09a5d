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

/**
 * Stop or delete several workloads after one confirmation that names them; each is asked of
 * the server on its own, and those the server refuses are reported together. Resolves with
 * how many were done (0 when cancelled).
 */
export async function runBulk(model: RunaiModel, action: 'stop' | 'delete', workloads: IWorkload[], title?: string): Promise<number> {
  if (!workloads.length) {
    return 0;
  }
  const n = workloads.length;
  const verb = action === 'stop' ? 'Stop' : 'Delete';
  const names = workloads.map(w => w.spec.name);
  const listed = names.length > 8 ? `${names.slice(0, 8).join(', ')} and ${names.length - 8} more` : names.join(', ');
  const result = await showDialog({
    title: title ?? `${verb} ${n} workload${n === 1 ? '' : 's'}?`,
    body:
      action === 'stop'
        ? `${listed}. Their pods are ended; they stay in the list and Resume puts each back in the queue.`
        : `${listed}. Their pods are ended and they are removed with their logs. This cannot be undone.`,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: verb })]
  });
  if (!result.button.accept) {
    return 0;
  }
  const outcomes = await Promise.all(
    workloads.map(w =>
      (action === 'stop' ? model.stop(w.spec.project, w.spec.name) : model.remove(w.spec.project, w.spec.name)).then(
        () => null,
        (error: unknown) => `${w.spec.name}: ${error instanceof Error ? error.message : String(error)}`
      )
    )
  );
  const failed = outcomes.filter((line): line is string => line !== null);
  if (failed.length) {
    await showErrorMessage(`Cannot ${action} ${failed.length} of ${n}`, new Error(failed.join('\n')));
  }
  return n - failed.length;
}
