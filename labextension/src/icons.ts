import { LabIcon } from '@jupyterlab/ui-components';

import runaiSvg from '../style/icons/runai.svg';

/** The extension's own icon: a GPU chip whose core is split in shares (fractions). */
export const runaiIcon = new LabIcon({ name: 'jupyter-runai:gpu', svgstr: runaiSvg });
