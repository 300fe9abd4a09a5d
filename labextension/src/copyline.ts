/** "Copy as `runai submit`": the command line (logic/submitline.ts) to the system clipboard,
 * and shown whole in a dialog (a notification would cut a long line short), with what the CLI
 * cannot say. */

import { Clipboard, Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { submitLine } from './logic/submitline';
import { IWorkloadSpec } from './logic/types';

export async function copySubmitLine(spec: IWorkloadSpec): Promise<string> {
  const { line, omitted } = submitLine(spec);
  Clipboard.copyToSystem(line);
  const text = h('textarea', {
    class: 'jp-mod-styled jp-RunaiCopy-line',
    readonly: true,
    spellcheck: 'false',
    rows: Math.min(8, 2 + Math.floor(line.length / 70)),
    'aria-label': 'The runai submit command line'
  });
  text.value = line;
  const body = new Widget({
    node: h(
      'div',
      { class: 'jp-RunaiCopy' },
      h('p', null, 'Copied to the clipboard. Run it in a terminal where the runai CLI reaches this server:'),
      text,
      omitted.length ? h('p', { class: 'jp-RunaiCopy-omitted' }, `The CLI has no option for ${omitted.join(', ')}: the line leaves it out.`) : null
    )
  });
  const shown = showDialog({ title: 'runai submit', body, buttons: [Dialog.okButton({ label: 'Close' })] });
  requestAnimationFrame(() => text.select());
  await shown;
  return line;
}
