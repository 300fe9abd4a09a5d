/** The cluster view (main area): nodes and their GPU devices as a grid; each device shows the
 * fractions held on it by workload, its utilization and memory; virtual devices are marked. */

import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { requestAPI, RunaiApiError } from './api';
import { h, replaceChildren, svg } from './dom';
import { deviceSparklines, IDeviceUsage, IProjectUsage, ISparkline, projectChart } from './logic/charts';
import { assignColours, clusterSummary, deviceCell, workloadsByDevice } from './logic/cluster';
import { bytesLabel, parseMemory } from './logic/format';
import { modeLabel } from './logic/mode';
import { projectRows, quotaBar } from './logic/quota';
import { RunaiModel } from './model';

export class ClusterView extends Widget {
  constructor(private readonly model: RunaiModel) {
    super();
    this.id = 'jupyter-runai-cluster';
    this.addClass('jp-RunaiCluster');
    this.title.label = 'GPU cluster';
    this.title.closable = true;
    this._unregister = model.addViewer(() => this.isVisible);
    model.changed.connect(this._render, this);
    this._render();
    // the charts' samples: every few seconds while the view shows (the server samples every 5 s)
    this._timer = window.setInterval(() => {
      if (this.isVisible && !document.hidden) {
        void this._loadUsage();
      }
    }, USAGE_EVERY_MS);
  }

  dispose(): void {
    window.clearInterval(this._timer);
    this._unregister();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    this.model.wake();
    void this._loadUsage();
  }

  /** Fetch the devices' and projects' recent samples (a caller who may not see nodes gets none). */
  private async _loadUsage(): Promise<void> {
    if (this._loading) {
      return;
    }
    this._loading = true;
    this._loadedAt = Date.now();
    const orEmpty = <T>(p: Promise<T>, empty: T) =>
      p.catch(error => {
        if (error instanceof RunaiApiError && (error.status === 403 || error.status === 404)) {
          return empty;
        }
        throw error;
      });
    try {
      const [devices, projects] = await Promise.all([
        orEmpty(requestAPI<{ devices: IDeviceUsage[] }>('usage/devices'), { devices: [] }),
        orEmpty(requestAPI<{ projects: IProjectUsage[] }>('usage/projects'), { projects: [] })
      ]);
      this._deviceUsage = new Map(devices.devices.map(d => [`${d.node}/${d.index}`, d]));
      this._projectUsage = new Map(projects.projects.map(p => [p.name, p]));
      this._render();
    } catch {
      // the charts wait for the next round; the rest of the view says what is wrong
    } finally {
      this._loading = false;
    }
  }

  /** A device's utilization and memory over time, or the plain words why there is none. */
  private _deviceChart(node: string, index: number, memoryBytes: number): HTMLElement | null {
    const usage = this._deviceUsage.get(`${node}/${index}`);
    if (!usage || !usage.samples.length) {
      return null;
    }
    const lines = deviceSparklines(usage, memoryBytes, SPARK_W, SPARK_H);
    const notMeasured = usage.virtual ? 'not measured (virtual GPU)' : 'not measured';
    const chart = (label: string, kind: string, line: ISparkline | null, now: string) =>
      h(
        'div',
        { class: 'jp-RunaiSpark', dataset: { series: kind } },
        h('span', { class: 'jp-RunaiSpark-label' }, label),
        line
          ? wrapSvg(
              svg(
                'svg',
                { class: 'jp-RunaiSpark-svg', width: SPARK_W, height: SPARK_H, viewBox: `0 0 ${SPARK_W} ${SPARK_H}`, role: 'img', 'aria-label': `${label} over time, now ${now}` },
                svg('path', { class: `jp-RunaiSpark-line jp-RunaiSpark-line--${kind}`, d: line.path })
              )
            )
          : h('span', { class: 'jp-RunaiSpark-none' }, notMeasured),
        line ? h('span', { class: 'jp-RunaiSpark-now' }, now) : null
      );
    const util = lines.utilization;
    const mem = lines.memory;
    return h(
      'div',
      { class: 'jp-RunaiDevice-history', title: lines.summary },
      chart('Allocated', 'allocated', lines.allocated, `${Number((lines.allocated.last ?? 0).toFixed(2))}`),
      util || mem
        ? [chart('Utilization', 'utilization', util, util ? `${Math.round(util.last!)}%` : ''), chart('Memory', 'memory', mem, mem ? bytesLabel(mem.last!) : '')]
        : chart('Use', 'use', null, '')
    );
  }

  /** A project's GPUs allocated over time against its deserved quota and fair share. */
  private _projectChart(name: string): HTMLElement | null {
    const usage = this._projectUsage.get(name);
    if (!usage || !usage.samples.length) {
      return null;
    }
    const c = projectChart(usage.samples, CHART_W, CHART_H);
    return wrapSvg(
      svg(
        'svg',
        { class: 'jp-RunaiProjectChart', width: CHART_W, height: CHART_H, viewBox: `0 0 ${CHART_W} ${CHART_H}`, role: 'img', 'aria-label': c.summary },
        svg('path', { class: 'jp-RunaiProjectChart-deserved', d: c.deserved.path }),
        c.fairShare.path ? svg('path', { class: 'jp-RunaiProjectChart-fair', d: c.fairShare.path }) : null,
        svg('path', { class: 'jp-RunaiProjectChart-allocated', d: c.allocated.path })
      ),
      c.summary
    );
  }

  private _render(): void {
    // no samples yet (a view just opened, a server just started): ask again soon rather than in 5 s
    if (this.isVisible && !this._deviceUsage.size && !this._projectUsage.size && Date.now() - this._loadedAt > 1000) {
      void this._loadUsage();
    }
    const nodes = this.model.nodes;
    const sum = clusterSummary(nodes);
    // one colour per workload, distinct on each device, kept from one refresh to the next
    this._colours = assignColours(workloadsByDevice(nodes), this._colours);
    const header = h(
      'header',
      { class: 'jp-RunaiCluster-header' },
      h('h2', null, 'GPU cluster'),
      h(
        'div',
        { class: 'jp-RunaiCluster-summary' },
        `${sum.nodes} node${sum.nodes === 1 ? '' : 's'} · ${sum.devices} GPU${sum.devices === 1 ? '' : 's'}` +
          (sum.virtual ? ` (${sum.virtual === sum.devices ? 'all' : sum.virtual} virtual)` : '') +
          ` · ${sum.allocated} of ${sum.devices} allocated`
      )
    );
    const body = nodes.map(node => {
      const cells = node.devices.map(d => deviceCell(node.name, d, this._colours));
      return h(
        'section',
        { class: 'jp-RunaiNode', 'aria-label': `Node ${node.name}`, dataset: { node: node.name } },
        h(
          'div',
          { class: 'jp-RunaiNode-head' },
          h('h3', { class: 'jp-RunaiNode-name' }, node.name),
          node.pool ? h('span', { class: 'jp-RunaiBadge' }, `pool ${node.pool}`) : null,
          node.schedulable ? null : h('span', { class: 'jp-RunaiBadge jp-RunaiBadge--warn' }, 'not schedulable'),
          h('span', { class: 'jp-RunaiNode-res' }, `${node.cpu} CPU · ${bytesLabel(parseMemory(node.memory))} memory`)
        ),
        cells.length
          ? h(
              'div',
              { class: 'jp-RunaiNode-devices' },
              cells.map(c =>
                h(
                  'div',
                  { class: `jp-RunaiDevice${c.virtual ? ' jp-mod-virtual' : ''}`, title: c.title, tabindex: 0, dataset: { device: String(c.index) } },
                  h(
                    'div',
                    { class: 'jp-RunaiDevice-head' },
                    h('span', { class: 'jp-RunaiDevice-index' }, `GPU ${c.index}`),
                    h('span', { class: 'jp-RunaiDevice-model' }, `${c.model} · ${c.memory}`),
                    c.virtual ? h('span', { class: 'jp-RunaiBadge jp-RunaiBadge--virtual', title: 'A virtual device: scheduled like a real one, no GPU behind it' }, 'virtual') : null
                  ),
                  h(
                    'div',
                    { class: 'jp-RunaiDevice-bar', role: 'img', 'aria-label': c.title.replace(/\n/g, '; ') },
                    c.segments.map(s =>
                      h(
                        'span',
                        { class: `jp-RunaiDevice-share jp-RunaiColour-${s.colour}`, style: { width: `${Math.min(100, s.fraction * 100)}%` }, title: `${s.workload}: ${Number(s.fraction.toFixed(2))}` },
                        s.fraction >= 0.2 ? shortName(s.workload) : ''
                      )
                    )
                  ),
                  h(
                    'ul',
                    { class: 'jp-RunaiDevice-legend' },
                    c.segments.map(s =>
                      h(
                        'li',
                        null,
                        h('span', { class: `jp-RunaiDevice-swatch jp-RunaiColour-${s.colour}` }),
                        h('span', { class: 'jp-RunaiDevice-workload' }, shortName(s.workload)),
                        h('span', { class: 'jp-RunaiDevice-fraction' }, String(Number(s.fraction.toFixed(2))))
                      )
                    ),
                    h('li', { class: 'jp-RunaiDevice-free' }, h('span', { class: 'jp-RunaiDevice-swatch jp-RunaiDevice-swatch--free' }), h('span', { class: 'jp-RunaiDevice-workload' }, 'free'), h('span', { class: 'jp-RunaiDevice-fraction' }, String(Number(c.free.toFixed(2)))))
                  ),
                  h(
                    'dl',
                    { class: 'jp-RunaiDevice-stats' },
                    h('dt', null, 'Utilization'),
                    h('dd', null, c.utilization),
                    h('dt', null, 'Memory'),
                    h('dd', null, c.memoryUse)
                  ),
                  this._deviceChart(node.name, c.index, parseMemory(c.memory))
                )
              )
            )
          : h('div', { class: 'jp-RunaiNode-empty' }, 'no GPU devices')
      );
    });
    const projects = this._projects();
    const mode = modeLabel(this.model.info);
    replaceChildren(
      this.node,
      header,
      projects,
      this.model.error ? h('div', { class: 'jp-RunaiSidebar-message', dataset: { kind: 'error' } }, this.model.error) : null,
      body.length ? body : h('div', { class: 'jp-RunaiSidebar-message' }, this.model.loaded ? 'No nodes.' : 'Loading…'),
      mode ? h('footer', { class: 'jp-RunaiCluster-mode', title: mode.title, dataset: { mode: this.model.info?.mode ?? '' } }, mode.text) : null
    );
  }

  /** The projects overview (`runai projects`): quota, allocation, fair share, limit, with a bar each. */
  private _projects(): HTMLElement | null {
    const projects = this.model.projects;
    if (!projects.length) {
      return null;
    }
    const gpus = this.model.info?.gpus ?? 0;
    const rows = projectRows(projects);
    return h(
      'section',
      { class: 'jp-RunaiProjects', 'aria-label': 'Projects' },
      h('h3', { class: 'jp-RunaiProjects-title' }, 'Projects'),
      h(
        'table',
        { class: 'jp-RunaiTable jp-RunaiProjects-table' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            h('th', null, 'Project'),
            h('th', null, 'Department'),
            h('th', { class: 'jp-mod-num', title: 'the quota: GPUs it is guaranteed' }, 'Deserved'),
            h('th', { class: 'jp-mod-num', title: 'GPUs its workloads hold now' }, 'Allocated'),
            h('th', { class: 'jp-mod-num', title: 'deserved plus its share of idle GPUs, from the last scheduling cycle' }, 'Fair share'),
            h('th', { class: 'jp-mod-num', title: 'the most it may hold' }, 'Limit'),
            h('th', { class: 'jp-mod-num', title: 'its weight when idle GPUs are shared out' }, 'Over-quota weight'),
            h('th', { class: 'jp-mod-num' }, 'Workloads'),
            h('th', { class: 'jp-RunaiProjects-barHead', title: 'now, and below it over time: allocated (solid) against deserved (dashed) and fair share (dotted)' }, `of ${gpus} GPUs · over time`)
          )
        ),
        h(
          'tbody',
          null,
          rows.map((r, i) => {
            const bar = quotaBar(projects[i], gpus);
            return h(
              'tr',
              { dataset: { project: r.name } },
              h('td', { class: 'jp-RunaiProjects-name' }, r.name),
              h('td', null, r.department),
              h('td', { class: 'jp-mod-num' }, r.deserved),
              h('td', { class: `jp-mod-num${r.over ? ' jp-mod-over' : ''}`, title: r.over ? 'over its quota: preemptible workloads may be reclaimed' : undefined }, r.allocated),
              h('td', { class: 'jp-mod-num' }, r.fairShare),
              h('td', { class: `jp-mod-num${r.atLimit ? ' jp-mod-over' : ''}` }, r.limit),
              h('td', { class: 'jp-mod-num' }, r.weight),
              h('td', { class: 'jp-mod-num' }, r.workloads),
              h(
                'td',
                { class: 'jp-RunaiProjects-bar' },
                h(
                  'div',
                  { class: 'jp-RunaiQuota-bar jp-RunaiQuota-bar--small', role: 'img', 'aria-label': bar.summary, title: bar.summary },
                  h('span', { class: 'jp-RunaiQuota-deserved', style: { width: `${bar.deservedPct}%` } }),
                  h('span', { class: 'jp-RunaiQuota-allocated', style: { width: `${bar.allocatedPct - bar.overPct}%` } }),
                  h('span', { class: 'jp-RunaiQuota-over', style: { left: `${bar.allocatedPct - bar.overPct}%`, width: `${bar.overPct}%` } }),
                  bar.fairSharePct === null ? null : h('span', { class: 'jp-RunaiQuota-marker jp-RunaiQuota-marker--fair', style: { left: `${bar.fairSharePct}%` } }),
                  bar.limitPct === null ? null : h('span', { class: 'jp-RunaiQuota-marker jp-RunaiQuota-marker--limit', style: { left: `${bar.limitPct}%` } })
                ),
                this._projectChart(r.name)
              ),

            );
          })
        )
      )
    );
  }

  private _unregister: () => void;
  private _colours = new Map<string, number>();
  private _deviceUsage = new Map<string, IDeviceUsage>();
  private _projectUsage = new Map<string, IProjectUsage>();
  private _loading = false;
  private _loadedAt = 0;
  private _timer: number;
}

const USAGE_EVERY_MS = 5000;
const SPARK_W = 120;
const SPARK_H = 24;
const CHART_W = 120;
const CHART_H = 28;

/** An inline SVG chart in a span (h() builds HTML only), with a tooltip. */
function wrapSvg(chart: SVGElement, title?: string): HTMLElement {
  const span = h('span', { class: 'jp-RunaiChart', title });
  span.appendChild(chart);
  return span;
}

/** "default/train-1" -> "train-1" (the project shows only when it is not the default one). */
function shortName(workload: string): string {
  return workload.startsWith('default/') ? workload.slice('default/'.length) : workload;
}
