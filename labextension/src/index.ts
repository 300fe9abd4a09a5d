/**
 * jupyter-runai's JupyterLab extension: the "GPU workloads" sidebar, the "New workload" form
 * (sidebar button, launcher tile, command palette), live logs and the cluster view.
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, MainAreaWidget, Notification, showDialog, showErrorMessage, WidgetTracker } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStateDB } from '@jupyterlab/statedb';
import { ReadonlyJSONObject } from '@lumino/coreutils';

import { AdminTab, AdminView } from './admin';
import { ClusterView } from './cluster';
import { WorkloadDetails } from './details';
import { WorkloadForm } from './form';
import { runaiIcon } from './icons';
import { LogsView } from './logs';
import { notifyWorkloadChanges } from './notifications';
import { IAccessMe, RunaiModel } from './model';
import { stateFromSpec } from './logic/clone';
import { readSettings } from './logic/settings';
import { IWorkloadSpec } from './logic/types';
import { ProjectDataView } from './projectdata';
import { ISidebarState, RunaiSidebar } from './sidebar';

export namespace CommandIDs {
  export const newWorkload = 'runai:new-workload';
  export const openLogs = 'runai:open-logs';
  export const openCluster = 'runai:open-cluster';
  export const openDetails = 'runai:open-details';
  export const openProjectData = 'runai:open-data';
  export const openAdmin = 'runai:open-admin';
  export const showPanel = 'runai:show-panel';
  export const refresh = 'runai:refresh';
}

const CATEGORY = 'GPU workloads';
/** the state database's key for the sidebar's project and filters */
const SIDEBAR_STATE = 'jupyter-runai:sidebar';

/** the plugin's id: also the name of its settings (schema/plugin.json) */
const PLUGIN_ID = 'jupyter-runai:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Submit, watch and manage GPU workloads of the jupyter-runai scheduler.',
  autoStart: true,
  optional: [ILauncher, ICommandPalette, ILayoutRestorer, IStateDB, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    state: IStateDB | null,
    registry: ISettingRegistry | null
  ) => {
    const model = new RunaiModel();
    // the user's settings (Settings → GPU workloads): read before the saved panel state, so that
    // the default view applies only where the user has chosen none; changes apply at once
    const settingsLoaded = registry
      ? registry
          .load(PLUGIN_ID)
          .then(settings => {
            const apply = () => model.configure(readSettings(settings.composite as Record<string, unknown>));
            apply();
            settings.changed.connect(apply);
          })
          .catch(reason => console.warn('jupyter-runai: the settings could not be read; using the defaults', reason))
      : Promise.resolve();
    const { commands, shell } = app;
    // one tracker per kind of main-area tab: the layout restorer reopens each after a reload
    const logsTracker = new WidgetTracker<MainAreaWidget<LogsView>>({ namespace: 'jupyter-runai-logs' });
    const detailsTracker = new WidgetTracker<MainAreaWidget<WorkloadDetails>>({ namespace: 'jupyter-runai-details' });
    const clusterTracker = new WidgetTracker<MainAreaWidget<ClusterView>>({ namespace: 'jupyter-runai-cluster' });
    const projectDataTracker = new WidgetTracker<MainAreaWidget<ProjectDataView>>({ namespace: 'jupyter-runai-resources' }); // the old name: layouts saved with it still restore
    const formTracker = new WidgetTracker<MainAreaWidget<WorkloadForm>>({ namespace: 'jupyter-runai-form' });
    const adminTracker = new WidgetTracker<MainAreaWidget<AdminView>>({ namespace: 'jupyter-runai-admin' });

    const sidebar = new RunaiSidebar(model, {
      newWorkload: () => void commands.execute(CommandIDs.newWorkload),
      openLogs: (project, name) => void commands.execute(CommandIDs.openLogs, { project, name }),
      openCluster: () => void commands.execute(CommandIDs.openCluster),
      openDetails: (project, name) => void commands.execute(CommandIDs.openDetails, { project, name }),
      openResources: project => void commands.execute(CommandIDs.openProjectData, project ? { project } : {}),
      openAdmin: () => void commands.execute(CommandIDs.openAdmin)
    });
    shell.add(sidebar, 'left', { rank: 250 });
    notifyWorkloadChanges(model, {
      openDetails: (project, name) => void commands.execute(CommandIDs.openDetails, { project, name }),
      openLogs: (project, name) => void commands.execute(CommandIDs.openLogs, { project, name }),
      showPanel: () => void commands.execute(CommandIDs.showPanel)
    });
    restorer?.add(sidebar, sidebar.id);
    if (state) {
      // the project, filters and name filter survive a reload
      void Promise.all([state.fetch(SIDEBAR_STATE), app.restored, settingsLoaded])
        .then(([saved]) => sidebar.restoreFilter(saved as Partial<ISidebarState> | undefined))
        .catch(() => undefined)
        .then(() => sidebar.filterChanged.connect((_, filter) => void state.save(SIDEBAR_STATE, { ...filter, sort: { ...filter.sort } })));
    }
    if (restorer) {
      void restorer.restore(logsTracker, {
        command: CommandIDs.openLogs,
        args: w => ({ project: w.content.project, name: w.content.workload, pod: w.content.pod }),
        name: w => w.id
      });
      void restorer.restore(detailsTracker, {
        command: CommandIDs.openDetails,
        args: w => ({ project: w.content.project, name: w.content.workload }),
        name: w => w.id
      });
      void restorer.restore(clusterTracker, { command: CommandIDs.openCluster, name: () => 'cluster' });
      void restorer.restore(projectDataTracker, {
        command: CommandIDs.openProjectData,
        args: w => ({ project: w.content.project }),
        name: () => 'resources'
      });
      void restorer.restore(formTracker, { command: CommandIDs.newWorkload, name: () => 'form' });
      void restorer.restore(adminTracker, { command: CommandIDs.openAdmin, args: w => ({ tab: w.content.tab }), name: () => 'admin' });
    }

    let form: MainAreaWidget<WorkloadForm> | null = null;
    commands.addCommand(CommandIDs.newWorkload, {
      label: args => (args.isPalette ? 'New GPU workload…' : 'New GPU Workload'),
      caption: 'Submit a workspace, training job or inference endpoint to the GPU scheduler',
      icon: args => (args.isPalette ? undefined : runaiIcon),
      execute: async args => {
        // `clone`: a workload's spec (from its details) to fill the form with
        const clone = args.clone && typeof args.clone === 'object' ? (args.clone as unknown as IWorkloadSpec) : null;
        if (form && !form.isDisposed) {
          if (!clone) {
            shell.activateById(form.id);
            return;
          }
          shell.activateById(form.id);
          const answer = await showDialog({
            title: 'Replace the open form?',
            body: `The New workload form is open. Fill it in again from ${clone.name}? What is typed in it now is lost.`,
            buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Replace' })]
          });
          if (!answer.button.accept) {
            return;
          }
          form.dispose();
        }
        let info = model.info;
        try {
          info = info?.form ? info : await model.reloadInfo();
          if (!model.loaded) {
            await model.refresh();
          }
        } catch (error) {
          await showErrorMessage('The GPU scheduler cannot be reached', error as Error);
          return;
        }
        const project = clone?.project ?? sidebar.project;
        const taken = model.workloads.filter(w => w.spec.project === project).map(w => w.spec.name);
        const content = new WorkloadForm(
          model,
          info!,
          project,
          workload => {
            // "Clone" from the form: another like the one just submitted, the form filled in again
            Notification.success(`Submitted ${workload.spec.kind} ${workload.spec.name}`, {
              autoClose: 6000,
              actions: [
                {
                  label: 'Clone',
                  caption: `A new form filled in from ${workload.spec.name}`,
                  callback: () => void commands.execute(CommandIDs.newWorkload, { clone: workload.spec as unknown as ReadonlyJSONObject })
                }
              ]
            });
            widget.dispose();
            shell.activateById(sidebar.id);
            sidebar.reveal(workload.spec.project, workload.spec.name);
          },
          () => widget.dispose(),
          clone ? stateFromSpec(clone, info!.form, taken) : null
        );
        const widget = new MainAreaWidget({ content });
        widget.id = 'jupyter-runai-new-workload';
        widget.title.label = 'New workload';
        widget.title.caption = clone ? `A clone of ${clone.project}/${clone.name}` : 'Submit a workload';
        widget.title.icon = runaiIcon;
        widget.title.closable = true;
        form = widget;
        void formTracker.add(widget);
        shell.add(widget, 'main');
        shell.activateById(widget.id);
      }
    });

    commands.addCommand(CommandIDs.openLogs, {
      label: args => (args.name ? `Logs of ${args.name}` : 'Open workload logs'),
      caption: 'Follow a workload\u2019s output, pod by pod',
      execute: args => {
        const project = String(args.project ?? 'default');
        const name = String(args.name ?? '');
        const pod = Number(args.pod ?? 0);
        if (!name) {
          return;
        }
        const id = `jupyter-runai-logs-${project}-${name}`;
        const open = logsTracker.find(w => w.id === id);
        if (open) {
          if (args.pod !== undefined) {
            open.content.showPod(pod);
            void logsTracker.save(open);
          }
          shell.activateById(open.id);
          return;
        }
        const content = new LogsView(model, project, name, pod, state);
        const widget = new MainAreaWidget({ content });
        widget.id = id;
        widget.title.label = `Logs: ${name}`;
        widget.title.icon = runaiIcon;
        content.podChanged.connect(() => void logsTracker.save(widget));
        void logsTracker.add(widget);
        shell.add(widget, 'main');
        shell.activateById(widget.id);
      }
    });

    commands.addCommand(CommandIDs.openDetails, {
      label: args => (args.name ? `Details of ${args.name}` : 'Workload details'),
      caption: 'A workload\u2019s spec, pods and latest events (runai describe)',
      execute: args => {
        const project = String(args.project ?? 'default');
        const name = String(args.name ?? '');
        if (!name) {
          return;
        }
        const id = `jupyter-runai-details-${project}-${name}`;
        const open = detailsTracker.find(w => w.id === id);
        if (open) {
          shell.activateById(open.id);
          return;
        }
        const content = new WorkloadDetails(model, project, name, {
          openLogs: (p, n, pod) => void commands.execute(CommandIDs.openLogs, { project: p, name: n, pod: pod ?? 0 }),
          clone: spec => void commands.execute(CommandIDs.newWorkload, { clone: spec as unknown as ReadonlyJSONObject })
        });
        const widget = new MainAreaWidget({ content });
        widget.id = id;
        widget.title.label = name;
        widget.title.caption = `${project}/${name}: spec, pods and events`;
        widget.title.icon = runaiIcon;
        widget.title.closable = true;
        void detailsTracker.add(widget);
        shell.add(widget, 'main');
        shell.activateById(widget.id);
      }
    });

    let projectData: MainAreaWidget<ProjectDataView> | null = null;
    commands.addCommand(CommandIDs.openProjectData, {
      label: args => (args.isPalette ? 'Open GPU data sources and credentials' : 'Data & Secrets'),
      caption: 'A project\u2019s data sources and credentials: list, add, delete',
      icon: args => (args.isPalette ? undefined : runaiIcon),
      execute: args => {
        const project = args.project ? String(args.project) : sidebar.project;
        if (projectData && !projectData.isDisposed) {
          projectData.content.showProject(project);
          void projectDataTracker.save(projectData);
          shell.activateById(projectData.id);
          return;
        }
        projectData = new MainAreaWidget({ content: new ProjectDataView(model, project) });
        projectData.id = 'jupyter-runai-project-data';
        projectData.title.label = 'Data & secrets';
        projectData.title.icon = runaiIcon;
        projectData.title.closable = true;
        const view = projectData;
        view.content.projectChanged.connect(() => void projectDataTracker.save(view));
        void projectDataTracker.add(projectData);
        shell.add(projectData, 'main');
        shell.activateById(projectData.id);
      }
    });

    let cluster: MainAreaWidget<ClusterView> | null = null;
    commands.addCommand(CommandIDs.openCluster, {
      label: args => (args.isPalette ? 'Open GPU cluster view' : 'GPU Cluster'),
      caption: 'Nodes and GPU devices, with the fractions each workload holds',
      icon: args => (args.isPalette ? undefined : runaiIcon),
      execute: () => {
        if (cluster && !cluster.isDisposed) {
          shell.activateById(cluster.id);
          return;
        }
        cluster = new MainAreaWidget({ content: new ClusterView(model) });
        cluster.id = 'jupyter-runai-cluster-view';
        cluster.title.label = 'GPU cluster';
        cluster.title.icon = runaiIcon;
        cluster.title.closable = true;
        void clusterTracker.add(cluster);
        shell.add(cluster, 'main');
        shell.activateById(cluster.id);
        model.wake();
      }
    });

    // the Admin view: for admins only (GET access/me); the server refuses anyone else anyway
    let isAdmin = false;
    const showAccess = (me: IAccessMe) => {
      isAdmin = me.admin;
      commands.notifyCommandChanged(CommandIDs.openAdmin);
    };
    void model.accessMe().then(showAccess).catch(() => undefined);
    model.accessChanged.connect((_, me) => showAccess(me));
    let admin: MainAreaWidget<AdminView> | null = null;
    commands.addCommand(CommandIDs.openAdmin, {
      label: args => (args.isPalette ? 'Open GPU administration' : 'GPU Admin'),
      caption: 'Departments, projects, node pools, policies, role bindings and the audit log',
      icon: args => (args.isPalette ? undefined : runaiIcon),
      isVisible: () => isAdmin,
      execute: async args => {
        const me = await model.accessMe();
        if (!me.admin) {
          return;
        }
        const tab = (args.tab as AdminTab | undefined) ?? null;
        if (!admin || admin.isDisposed) {
          admin = new MainAreaWidget({ content: new AdminView(model) });
          admin.id = 'jupyter-runai-admin-view';
          admin.title.label = 'GPU admin';
          admin.title.icon = runaiIcon;
          admin.title.closable = true;
          const view = admin;
          view.content.tabChanged.connect(() => void adminTracker.save(view));
          void adminTracker.add(admin);
          shell.add(admin, 'main');
        }
        if (tab) {
          admin.content.showTab(tab);
        }
        shell.activateById(admin.id);
      }
    });

    commands.addCommand(CommandIDs.showPanel, {
      label: 'Show GPU workloads panel',
      execute: () => {
        shell.activateById(sidebar.id);
        // the command palette gives the focus back to where it was when it closes, after
        // this runs: move it into the panel once that is done
        window.setTimeout(() => sidebar.focusPanel(), 50);
      }
    });
    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh GPU workloads',
      execute: () => model.refresh()
    });

    if (palette) {
      for (const command of [CommandIDs.newWorkload, CommandIDs.openCluster, CommandIDs.openProjectData, CommandIDs.openAdmin, CommandIDs.showPanel, CommandIDs.refresh]) {
        palette.addItem({ command, category: CATEGORY, args: { isPalette: true } });
      }
    }
    if (launcher) {
      launcher.add({ command: CommandIDs.newWorkload, category: CATEGORY, rank: 1 });
      launcher.add({ command: CommandIDs.openCluster, category: CATEGORY, rank: 2 });
      launcher.add({ command: CommandIDs.openProjectData, category: CATEGORY, rank: 3 });
    }
  }
};

export default plugin;
