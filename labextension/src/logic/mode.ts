/** Where the scheduler runs, as `/info` says it (docs/jupyterhub.md): the Cluster view's footer. */

import { IInfo } from './types';

export interface IModeLabel {
  /** the short line shown */
  text: string;
  /** the longer explanation (tooltip) */
  title: string;
}

/** The footer line for the scheduler's mode; null when the server does not say (older servers). */
export function modeLabel(info: Pick<IInfo, 'mode' | 'service'> | null | undefined): IModeLabel | null {
  switch (info?.mode) {
    case 'embedded':
      return {
        text: 'Scheduler: in this Jupyter server',
        title: 'embedded mode: the scheduler runs inside this Jupyter server, on its own state directory'
      };
    case 'service': {
      const name = info.service?.name;
      return {
        text: `Scheduler: the shared service${name ? ` "${name}"` : ''} (this server)`,
        title: 'service mode: this is the scheduler run once for a whole JupyterHub (runai serve)'
      };
    }
    case 'client': {
      const name = info.service?.name;
      const url = info.service?.url;
      return {
        text: `Scheduler: the shared service${name ? ` "${name}"` : ''}`,
        title:
          'client mode: this Jupyter server runs no scheduler; it forwards to the JupyterHub service' +
          `${name ? ` "${name}"` : ''}${url ? ` at ${url}` : ''}, as you`
      };
    }
    default:
      return null;
  }
}
