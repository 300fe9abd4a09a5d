/** The "New workload" form (a main-area tab): fields, defaults and bounds from the server's
 * `info.form`, every server field error beside its field. */

import { Widget } from '@lumino/widgets';

import { RunaiApiError } from './api';
import { copySubmitLine } from './copyline';
import { h } from './dom';
import { buildSpec, changeKind, FieldId, FIELDS, IFormState, initialState, kindFields, placeErrors, snapFraction } from './logic/form';
import { bytesLabel, parseMemory } from './logic/format';
import { applyPolicy, rebaseDefaults } from './logic/policy';
import { GpuMode, IFormInfo, IInfo, IWorkload, Kind } from './logic/types';
import { RunaiModel } from './model';

const MODES: { value: GpuMode; label: string; hint: string }[] = [
  { value: 'whole', label: 'Whole GPUs', hint: 'dedicated devices' },
  { value: 'fraction', label: 'Fraction', hint: 'a share of one device' },
  { value: 'memory', label: 'GPU memory', hint: 'a share sized by memory' },
  { value: 'none', label: 'No GPU', hint: 'CPU only' }
];

export class WorkloadForm extends Widget {
  constructor(
    private readonly model: RunaiModel,
    private readonly info: IInfo,
    project: string | null,
    private readonly onSubmitted: (w: IWorkload) => void,
    private readonly onCancel: () => void,
    /** a clone's state (logic/clone.ts); else the server's defaults */
    initial: IFormState | null = null
  ) {
    super();
    this.addClass('jp-RunaiForm');
    this.id = 'jupyter-runai-form';
    this.title.label = 'New workload';
    this.title.closable = true;
    const form = info.form;
    this._form = form;
    this.state = initial ? { ...initial } : initialState(form, project, this._taken(project ?? form.defaults.project));
    this._build();
    this._sync();
    void this._loadAttachable();
    void this._loadPolicy();
  }

  /** The effective policy of the form's project and kind: its defaults replace the fields left at the
   * old defaults, its bounds narrow the form's (the form is built again with them). */
  private async _loadPolicy(): Promise<void> {
    const { project, kind } = this.state;
    let next: IFormInfo = this.info.form;
    try {
      next = applyPolicy(this.info.form, await this.model.effectivePolicy(project, kind));
    } catch {
      // an older server, or no such project: the form's own defaults and bounds; the server checks at submit
    }
    if (project !== this.state.project || kind !== this.state.kind || this.isDisposed || next === this._form) {
      return;
    }
    this.state = rebaseDefaults(this.state, this._form, next);
    this._form = next;
    this.node.replaceChildren();
    this._inputs = {};
    this._fields = {};
    this._errors = {};
    this._build();
    this._sync();
    void this._loadAttachable();
  }

  state: IFormState;

  /** Focus the first field when shown. */
  protected onActivateRequest(): void {
    const name = this._inputs.name as HTMLInputElement | undefined;
    name?.focus();
    name?.select();
  }

  private _taken(project: string): string[] {
    return this.model.workloads.filter(w => w.spec.project === project).map(w => w.spec.name);
  }

  private _field(id: FieldId, label: string, control: HTMLElement, hint: string | null = null): HTMLElement {
    const error = h('div', { class: 'jp-RunaiField-error', id: `jp-runai-${id}-error`, role: 'alert', 'aria-live': 'polite' });
    this._errors[id] = error;
    const hintEl = hint ? h('div', { class: 'jp-RunaiField-hint', id: `jp-runai-${id}-hint` }, hint) : null;
    control.setAttribute('aria-describedby', `jp-runai-${id}-error${hint ? ` jp-runai-${id}-hint` : ''}`);
    const wrapper = h(
      'div',
      { class: 'jp-RunaiField', dataset: { field: id } },
      h('label', { class: 'jp-RunaiField-label', for: control.id || undefined }, label),
      h('div', { class: 'jp-RunaiField-control' }, control, hintEl, error)
    );
    this._fields[id] = wrapper;
    return wrapper;
  }

  private _input(id: FieldId, attrs: Record<string, any>, onValue: (input: HTMLInputElement) => void): HTMLInputElement {
    const input = h('input', { class: 'jp-mod-styled', id: `jp-runai-${id}`, name: id, ...attrs, oninput: () => { onValue(input); this._clearError(id); this._sync(); } });
    this._inputs[id] = input;
    return input;
  }

  private _build(): void {
    const info = this._form;
    const b = info.bounds;
    const s = this.state;

    const kind = h(
      'select',
      {
        class: 'jp-mod-styled',
        id: 'jp-runai-kind',
        name: 'kind',
        onchange: () => {
          this.state = changeKind(this.state, kind.value as Kind, info, this._taken(this.state.project));
          (this._inputs.name as HTMLInputElement).value = this.state.name;
          (this._inputs.command as HTMLTextAreaElement).value = this.state.command;
          this._clearError('kind');
          this._sync();
          void this._loadPolicy();
        }
      },
      info.kinds.map(k => h('option', { value: k.name, selected: k.name === s.kind }, k.label))
    );
    this._inputs.kind = kind;

    const project = h(
      'select',
      {
        class: 'jp-mod-styled',
        id: 'jp-runai-project',
        name: 'project',
        onchange: () => {
          this.state.project = project.value;
          this.state.dataSources = [];
          this.state.credentials = [];
          this._clearError('project');
          void this._loadAttachable();
          void this._loadPolicy();
        }
      },
      this.model.projects.map(p => h('option', { value: p.name, selected: p.name === s.project }, p.name))
    );
    this._inputs.project = project;

    const name = this._input('name', { type: 'text', value: s.name, spellcheck: 'false', autocomplete: 'off', maxlength: info.name_max }, i => (this.state.name = i.value));

    // GPU request
    const modeGroup = h(
      'div',
      { class: 'jp-RunaiForm-modes', role: 'radiogroup', 'aria-label': 'GPU request', id: 'jp-runai-gpu_mode' },
      MODES.map(m =>
        h(
          'label',
          { class: 'jp-RunaiForm-mode', title: m.hint },
          h('input', {
            type: 'radio',
            name: 'gpu_mode',
            value: m.value,
            checked: m.value === s.gpuMode,
            onchange: () => {
              this.state.gpuMode = m.value;
              this._clearError('gpu');
              this._clearError('fraction');
              this._clearError('gpu_memory');
              this._sync();
            }
          }),
          h('span', null, m.label)
        )
      )
    );
    const gpu = this._input('gpu', { type: 'number', min: Math.min(1, b.gpu.max), max: b.gpu.max, step: b.gpu.step, value: s.gpu }, i => (this.state.gpu = Number(i.value)));
    const steps = b.fraction.steps;
    const fractionValue = h('output', { class: 'jp-RunaiForm-fractionValue', for: 'jp-runai-fraction' });
    const fraction = this._input(
      'fraction',
      { class: 'jp-RunaiForm-range', type: 'range', min: steps[0], max: steps[steps.length - 1], step: steps.length > 1 ? steps[1] - steps[0] : 0.25, value: s.fraction, list: 'jp-runai-fraction-steps' },
      i => (this.state.fraction = snapFraction(Number(i.value), steps))
    );
    const ticks = h('datalist', { id: 'jp-runai-fraction-steps' }, steps.map(v => h('option', { value: v, label: String(v) })));
    const tickLabels = h('div', { class: 'jp-RunaiForm-ticks', 'aria-hidden': 'true' }, steps.map(v => h('span', null, String(v))));
    const dynamic = h('input', {
      type: 'checkbox',
      id: 'jp-runai-dynamic',
      checked: s.dynamic,
      onchange: () => {
        this.state.dynamic = dynamic.checked;
        this._clearError('gpu_limit');
        this._sync();
      }
    });
    const gpuLimit = this._input('gpu_limit', { type: 'number', min: b.gpu_limit.min, max: b.gpu_limit.max, step: 0.05, value: s.gpuLimit }, i => (this.state.gpuLimit = Number(i.value)));
    const gpuMemory = this._input(
      'gpu_memory',
      { type: 'text', value: s.gpuMemory, placeholder: 'e.g. 8Gi', spellcheck: 'false' },
      i => (this.state.gpuMemory = i.value)
    );
    const gpuDevices = this._input('gpu_devices', { type: 'number', min: b.gpu_devices.min, max: b.gpu_devices.max, step: 1, value: s.gpuDevices }, i => (this.state.gpuDevices = Number(i.value)));
    this._fractionValue = fractionValue;

    const cpu = this._input('cpu', { type: 'text', value: s.cpu, placeholder: 'cores, or 500m', spellcheck: 'false' }, i => (this.state.cpu = i.value));
    const memory = this._input('memory', { type: 'text', value: s.memory, placeholder: 'e.g. 4Gi', spellcheck: 'false' }, i => (this.state.memory = i.value));
    const image = this._input('image', { type: 'text', value: s.image, spellcheck: 'false' }, i => (this.state.image = i.value));
    const command = h('textarea', {
      class: 'jp-mod-styled jp-RunaiForm-command',
      id: 'jp-runai-command',
      name: 'command',
      rows: 3,
      spellcheck: 'false',
      oninput: () => {
        this.state.command = command.value;
        this._clearError('command');
      }
    });
    command.value = s.command;
    this._inputs.command = command;
    const environment = h('textarea', {
      class: 'jp-mod-styled',
      id: 'jp-runai-environment',
      name: 'environment',
      rows: 2,
      spellcheck: 'false',
      placeholder: 'NAME=value, one per line',
      oninput: () => {
        this.state.environment = environment.value;
        this._clearError('environment');
      }
    });
    environment.value = s.environment;
    this._inputs.environment = environment;
    const workers = this._input('workers', { type: 'number', min: b.workers.min, max: b.workers.max, step: 1, value: s.workers }, i => (this.state.workers = Number(i.value)));
    const minReplicas = this._input('min_replicas', { type: 'number', min: b.replicas.min, max: b.replicas.max, step: 1, value: s.minReplicas }, i => (this.state.minReplicas = Number(i.value)));
    const maxReplicas = this._input('max_replicas', { type: 'number', min: b.replicas.min, max: b.replicas.max, step: 1, value: s.maxReplicas }, i => (this.state.maxReplicas = Number(i.value)));
    const backoff = this._input('backoff_limit', { type: 'number', min: b.backoff_limit.min, max: b.backoff_limit.max, step: 1, value: s.backoffLimit }, i => (this.state.backoffLimit = Number(i.value)));
    const cpuLimit = this._input('cpu_limit', { type: 'text', value: s.cpuLimit, placeholder: 'none', spellcheck: 'false' }, i => (this.state.cpuLimit = i.value));
    const memoryLimit = this._input('memory_limit', { type: 'text', value: s.memoryLimit, placeholder: 'none', spellcheck: 'false' }, i => (this.state.memoryLimit = i.value));
    const minAvailable = this._input('min_available', { type: 'text', inputmode: 'numeric', value: s.minAvailable, placeholder: 'all', spellcheck: 'false' }, i => (this.state.minAvailable = i.value));
    const workingDir = this._input('working_dir', { type: 'text', value: s.workingDir, placeholder: 'the server\u2019s root', spellcheck: 'false' }, i => (this.state.workingDir = i.value));
    const pythonEnv = this._input('python_env', { type: 'text', value: s.pythonEnv, placeholder: 'the server\u2019s environment', spellcheck: 'false' }, i => (this.state.pythonEnv = i.value));
    const classes = info.priority_classes ?? ['train', 'build-preemptible', 'build', 'inference'];
    const priorityClass = h(
      'select',
      {
        class: 'jp-mod-styled',
        id: 'jp-runai-priority_class',
        name: 'priority_class',
        onchange: () => {
          this.state.priorityClass = priorityClass.value;
          this._clearError('priority_class');
        }
      },
      h('option', { value: '' }, 'by kind'),
      classes.map(c => h('option', { value: c }, c)),
      // a clone's class that this server does not list still shows (the server says if it is refused)
      s.priorityClass && !classes.includes(s.priorityClass) ? h('option', { value: s.priorityClass }, s.priorityClass) : null
    );
    priorityClass.value = s.priorityClass;
    this._inputs.priority_class = priorityClass;
    const preemptible = h(
      'select',
      {
        class: 'jp-mod-styled',
        id: 'jp-runai-preemptible',
        name: 'preemptible',
        onchange: () => {
          this.state.preemptible = preemptible.value as IFormState['preemptible'];
          this._clearError('preemptible');
        }
      },
      h('option', { value: 'default' }, 'by priority'),
      h('option', { value: 'yes' }, 'yes: may be stopped to make room'),
      h('option', { value: 'no' }, 'no: never stopped for others')
    );
    preemptible.value = s.preemptible;
    this._inputs.preemptible = preemptible;
    this._dataSourcesBox = h('div', { class: 'jp-RunaiForm-pools', id: 'jp-runai-data_sources', role: 'group', 'aria-label': 'Data sources' });
    this._credentialsBox = h('div', { class: 'jp-RunaiForm-pools', id: 'jp-runai-credentials', role: 'group', 'aria-label': 'Credentials' });
    this._inputs.data_sources = this._dataSourcesBox;
    this._inputs.credentials = this._credentialsBox;
    const pools = h(
      'div',
      { class: 'jp-RunaiForm-pools', id: 'jp-runai-node_pools', role: 'group', 'aria-label': 'Node pools' },
      info.node_pools.map(p =>
        h(
          'label',
          { class: 'jp-RunaiForm-pool' },
          h('input', {
            type: 'checkbox',
            value: p,
            checked: s.nodePools.includes(p),
            onchange: (e: Event) => {
              const on = (e.target as HTMLInputElement).checked;
              this.state.nodePools = on ? [...this.state.nodePools, p] : this.state.nodePools.filter(x => x !== p);
              this._clearError('node_pools');
              this._sync();
            }
          }),
          h('span', null, p)
        )
      )
    );
    this._poolOrder = h('div', { class: 'jp-RunaiField-hint' });

    this._general = h('div', { class: 'jp-RunaiForm-general', role: 'alert' });
    this._submit = h('button', { class: 'jp-mod-styled jp-mod-accept jp-RunaiForm-submit', type: 'submit' }, 'Submit');
    const cancel = h('button', { class: 'jp-mod-styled jp-mod-reject jp-RunaiForm-cancel', type: 'button', onclick: () => this.onCancel() }, 'Cancel');
    const copy = h(
      'button',
      {
        class: 'jp-mod-styled jp-RunaiForm-copy',
        type: 'button',
        title: 'Copy the runai CLI command line that submits this workload (the form is checked first)',
        onclick: () => this._copy()
      },
      'Copy as runai submit'
    );

    const maxNote = (what: string | null, prefix = 'at most ') => (what ? `${prefix}${readable(what)}` : null);
    const form = h(
      'form',
      {
        class: 'jp-RunaiForm-form',
        novalidate: true,
        'aria-label': 'New workload',
        onsubmit: (e: Event) => {
          e.preventDefault();
          void this._send();
        }
      },
      h('h2', { class: 'jp-RunaiForm-title' }, 'New workload'),
      this._general,
      h(
        'fieldset',
        { class: 'jp-RunaiForm-section' },
        h('legend', null, 'Workload'),
        this._field('kind', 'Kind', kind),
        this._field('name', 'Name', name, 'lowercase letters, digits and -; unique in the project'),
        this._field('project', 'Project', project)
      ),
      h(
        'fieldset',
        { class: 'jp-RunaiForm-section' },
        h('legend', null, 'GPU'),
        this._field('gpu_mode', 'Request', modeGroup),
        this._field('gpu', 'Devices', gpu, `whole GPUs per pod, at most ${b.gpu.max} (${b.gpu.by ?? 'the most on one node'})`),
        this._field('fraction', 'Fraction', h('div', { class: 'jp-RunaiForm-slider' }, h('div', { class: 'jp-RunaiForm-rangeBox' }, fraction, tickLabels), ticks, fractionValue), 'of one device'),
        this._field(
          'gpu_limit',
          'Burst limit',
          h('div', { class: 'jp-RunaiForm-inline' }, h('label', { class: 'jp-RunaiForm-check' }, dynamic, h('span', null, 'dynamic: burst up to')), gpuLimit),
          'guaranteed the fraction, may use up to the limit when the device has room'
        ),
        this._field('gpu_memory', 'GPU memory', gpuMemory, maxNote(b.gpu_memory.max, 'per device, at most ')),
        this._field('gpu_devices', 'Spread over', gpuDevices, `devices of one node with the same share (1 to ${b.gpu_devices.max})`)
      ),
      h(
        'fieldset',
        { class: 'jp-RunaiForm-section' },
        h('legend', null, 'Pods'),
        this._field('workers', 'Workers', workers, `besides the master (${b.workers.min} to ${b.workers.max})`),
        this._field('min_available', 'Start together', minAvailable, 'pods that must start at once (the gang minimum); empty: all'),
        this._field('min_replicas', 'Min replicas', minReplicas, 'replicas kept running'),
        this._field('max_replicas', 'Max replicas', maxReplicas, 'it scales up to this on load'),
        this._field('backoff_limit', 'Retries', backoff, 'restarts after a failure'),
        this._field('cpu', 'CPU', cpu, maxNote(b.cpu.max, b.cpu.by ? `per pod; ${b.cpu.by} allows at most ` : 'per pod; a node has at most ')),
        this._field('cpu_limit', 'CPU limit', cpuLimit, 'optional; at least the request'),
        this._field('memory', 'Memory', memory, maxNote(b.memory.max, b.memory.by ? `per pod; ${b.memory.by} allows at most ` : 'per pod; a node has at most ')),
        this._field('memory_limit', 'Memory limit', memoryLimit, 'optional; at least the request')
      ),
      h(
        'fieldset',
        { class: 'jp-RunaiForm-section' },
        h('legend', null, 'Run'),
        this._field('image', 'Image', image, this.info.backend === 'local' ? 'optional, and only recorded: the local cluster runs no images' : null),
        this._field(
          'command',
          'Command',
          command,
          this.info.backend === 'local' ? 'runs in a shell, in the server\u2019s Python environment (or the Python env below)' : 'runs in a shell'
        ),
        this._field('environment', 'Environment', environment),
        this._field('working_dir', 'Working dir', workingDir, 'where the command starts; data sources appear relative to it'),
        this.info.backend === 'local' ? this._field('python_env', 'Python env', pythonEnv, 'a venv or conda prefix to run in') : null
      ),
      h(
        'fieldset',
        { class: 'jp-RunaiForm-section' },
        h('legend', null, 'Data and secrets'),
        this._field('data_sources', 'Data sources', this._dataSourcesBox),
        this._field('credentials', 'Credentials', this._credentialsBox)
      ),
      h(
        'fieldset',
        { class: 'jp-RunaiForm-section' },
        h('legend', null, 'Placement and priority'),
        this._field('node_pools', 'Node pools', h('div', null, pools, this._poolOrder)),
        this._field('priority_class', 'Priority class', priorityClass, 'by kind: build for a workspace, train for training, inference for an endpoint'),
        this._field('preemptible', 'Preemptible', preemptible, 'by priority: train and build-preemptible may be stopped to make room; build and inference are not')
      ),
      h('div', { class: 'jp-RunaiForm-buttons' }, copy, cancel, this._submit)
    );
    this.node.appendChild(form);
  }

  /** Show the fields the kind and GPU mode use; keep displayed values in step. */
  private _sync(): void {
    const s = this.state;
    const extra = kindFields(this._form, s.kind);
    const show: Record<string, boolean> = {
      gpu: s.gpuMode === 'whole',
      fraction: s.gpuMode === 'fraction',
      gpu_limit: s.gpuMode === 'fraction',
      gpu_memory: s.gpuMode === 'memory',
      gpu_devices: s.gpuMode === 'fraction' || s.gpuMode === 'memory',
      workers: extra.includes('workers'),
      min_available: extra.includes('workers'),
      min_replicas: extra.includes('min_replicas'),
      max_replicas: extra.includes('max_replicas'),
      backoff_limit: extra.includes('backoff_limit')
    };
    for (const [id, visible] of Object.entries(show)) {
      const el = this._fields[id as FieldId];
      if (el) {
        el.hidden = !visible;
      }
    }
    if (this._fractionValue) {
      this._fractionValue.textContent = `${s.fraction} GPU`;
    }
    (this._inputs.gpu_limit as HTMLInputElement).disabled = !s.dynamic;
    this._poolOrder.textContent = s.nodePools.length ? `in order of preference: ${s.nodePools.join(' → ')}` : 'none chosen: any node';
  }

  /** The project's data sources and credentials, as checkboxes (attached by name). */
  private async _loadAttachable(): Promise<void> {
    const project = this.state.project;
    let sources: string[] = [];
    let credentials: string[] = [];
    try {
      const [ds, cr] = await Promise.all([this.model.dataSources(project), this.model.credentials(project)]);
      sources = ds.map(d => d.name);
      credentials = cr.map(c => c.name);
    } catch {
      // the server says why at submit
    }
    if (project !== this.state.project || this.isDisposed) {
      return;
    }
    const boxes = (box: HTMLElement, names: string[], chosen: string[], field: 'data_sources' | 'credentials', what: string) => {
      box.replaceChildren(
        ...(names.length
          ? names.map(n =>
              h(
                'label',
                { class: 'jp-RunaiForm-pool' },
                h('input', {
                  type: 'checkbox',
                  value: n,
                  checked: chosen.includes(n),
                  onchange: (e: Event) => {
                    const on = (e.target as HTMLInputElement).checked;
                    const list = field === 'data_sources' ? this.state.dataSources : this.state.credentials;
                    const next = on ? [...list, n] : list.filter(x => x !== n);
                    if (field === 'data_sources') {
                      this.state.dataSources = next;
                    } else {
                      this.state.credentials = next;
                    }
                    this._clearError(field);
                  }
                }),
                h('span', null, n)
              )
            )
          : [h('span', { class: 'jp-RunaiField-hint' }, `none in project ${project}: add ${what} in the sidebar's Data & secrets view`)])
      );
    };
    boxes(this._dataSourcesBox, sources, this.state.dataSources, 'data_sources', 'data sources');
    boxes(this._credentialsBox, credentials, this.state.credentials, 'credentials', 'credentials');
  }

  private _clearError(id: FieldId): void {
    const el = this._errors[id];
    if (el && el.textContent) {
      el.textContent = '';
      this._fields[id]?.classList.remove('jp-mod-error');
      this._inputs[id]?.removeAttribute('aria-invalid');
    }
  }

  private _showErrors(byField: Partial<Record<FieldId, string[] | string>>, general: string[]): void {
    for (const id of FIELDS) {
      const messages = byField[id];
      const text = Array.isArray(messages) ? messages.join('\n') : messages ?? '';
      const el = this._errors[id];
      if (el) {
        el.textContent = text;
      }
      this._fields[id]?.classList.toggle('jp-mod-error', !!text);
      if (text) {
        this._inputs[id]?.setAttribute('aria-invalid', 'true');
      } else {
        this._inputs[id]?.removeAttribute('aria-invalid');
      }
    }
    this._general.textContent = general.join('\n');
    const first = FIELDS.find(id => byField[id]);
    if (first) {
      this._fields[first]?.scrollIntoView({ block: 'center' });
      this._inputs[first]?.focus();
    }
  }

  /** The command line of what Submit would send: the form's errors first, as Submit shows them. */
  private _copy(): void {
    const built = buildSpec(this.state, this.info.form, {
      localCluster: this.info.backend === 'local',
      taken: this._taken(this.state.project)
    });
    if (!built.spec) {
      this._showErrors(built.errors, []);
      return;
    }
    this._showErrors({}, []);
    void copySubmitLine(built.spec);
  }

  private async _send(): Promise<void> {
    const built = buildSpec(this.state, this._form, {
      localCluster: this.info.backend === 'local',
      taken: this._taken(this.state.project)
    });
    if (!built.spec) {
      this._showErrors(built.errors, []);
      return;
    }
    this._submit.disabled = true;
    this._submit.textContent = 'Submitting…';
    try {
      const workload = await this.model.submit(built.spec);
      this._showErrors({}, []);
      this.onSubmitted(workload);
    } catch (error) {
      if (error instanceof RunaiApiError) {
        const placed = placeErrors(error.body, this.state.gpuMode, error.message);
        this._showErrors(placed.byField, placed.general);
      } else {
        this._showErrors({}, [String(error)]);
      }
    } finally {
      this._submit.disabled = false;
      this._submit.textContent = 'Submit';
    }
  }

  /** the server's form info narrowed by the effective policy of the form's project and kind */
  private _form: IFormInfo;
  private _inputs: Partial<Record<FieldId, HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement | HTMLElement>> = {};
  private _fields: Partial<Record<FieldId, HTMLElement>> = {};
  private _errors: Partial<Record<FieldId, HTMLElement>> = {};
  private _general!: HTMLElement;
  private _submit!: HTMLButtonElement;
  private _fractionValue: HTMLElement | null = null;
  private _poolOrder!: HTMLElement;
  private _dataSourcesBox!: HTMLElement;
  private _credentialsBox!: HTMLElement;
}

/** "24683656Ki" -> "23.5 GiB"; CPU counts and other values stay as they are. */
function readable(quantity: string): string {
  return /[KMGTP]i?$/.test(quantity) ? bytesLabel(parseMemory(quantity)) : quantity;
}
