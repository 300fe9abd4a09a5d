/**
 * The shapes the REST API (/runai/api/v1/) answers with, as far as the sidebar reads them
 * (docs/rest-api.md, docs/models.md).
 */

export type Phase =
  | 'Pending'
  | 'Running'
  | 'Stopping'
  | 'Stopped'
  | 'Succeeded'
  | 'Failed'
  | 'Deleting';

export type Kind = 'workspace' | 'training' | 'distributed' | 'inference';

export interface IResources {
  gpu?: number | null;
  gpu_memory?: string | null;
  gpu_devices?: number | null;
  gpu_limit?: number | null;
  cpu?: string | null;
  cpu_limit?: string | null;
  memory?: string | null;
  memory_limit?: string | null;
}

export interface IWorkloadSpec {
  name: string;
  project: string;
  kind: Kind;
  resources: IResources;
  image?: string | null;
  command?: string | string[] | null;
  environment?: Record<string, string>;
  node_pools?: string[];
  workers?: number | null;
  min_replicas?: number | null;
  max_replicas?: number | null;
  backoff_limit?: number | null;
  preemptible?: boolean | null;
  priority_class?: string | null;
  working_dir?: string | null;
  python_env?: string | null;
  data_sources?: string[];
  credentials?: string[];
  master?: boolean | null;
  master_resources?: IResources | null;
  min_available?: number | null;
}

export interface IPodStatus {
  name: string;
  index: number;
  phase: string;
  node: string | null;
  devices: number[];
  fraction: number | null;
  gpu_memory: string | null;
  started_at: string | null;
  finished_at: string | null;
  message: string | null;
}

export interface IWorkloadStatus {
  phase: Phase;
  pending_reason: string | null;
  message: string | null;
  pods: IPodStatus[];
  url: string | null;
  restarts?: number;
  /** while Pending: its place among its project's pending workloads (1: the first) */
  queue_position?: number | null;
  submitted_at: string | null;
  started_at: string | null;
  finished_at: string | null;
}

export interface IWorkload {
  uid: string;
  spec: IWorkloadSpec;
  status: IWorkloadStatus;
  submitted_by?: string;
}

export interface IProject {
  name: string;
  department?: string;
  deserved: { gpu: number };
  limit: { gpu: number | null };
  allocated: { gpu: number };
  fair_share: { gpu: number } | null;
  over_quota_weight?: number;
  priority?: number;
  workloads?: number;
}

export interface IDevicePod {
  pod: string;
  fraction: number;
}

export interface IDevice {
  index: number;
  uuid: string;
  model: string;
  memory: string;
  virtual: boolean;
  allocated_fraction: number;
  allocated_memory: number;
  used_memory: number | null;
  utilization: number | null;
  pods: IDevicePod[];
}

export interface INode {
  name: string;
  cpu: string;
  memory: string;
  devices: IDevice[];
  schedulable: boolean;
  pool?: string;
  labels?: Record<string, string>;
}

export interface IKindInfo {
  name: Kind;
  label: string;
  fields: string[];
}

export interface IFormInfo {
  kinds: IKindInfo[];
  defaults: {
    kind: Kind;
    project: string;
    gpu_mode: GpuMode;
    gpu: number;
    fraction: number;
    gpu_memory: string | null;
    gpu_devices: number;
    cpu: string;
    memory: string;
    image: string;
    commands: Record<string, string>;
    workers: number;
    min_replicas: number;
    max_replicas: number;
    backoff_limit: number;
  };
  /** each bound's `by`, where present: what set it when not the cluster (a policy: "the project 'vision' policy") */
  bounds: {
    gpu: { min: number; max: number; step: number; by?: string };
    fraction: { min: number; max: number; steps: number[] };
    gpu_limit: { min: number; max: number };
    gpu_memory: { max: string | null; by?: string };
    gpu_devices: { min: number; max: number };
    cpu: { max: string | null; by?: string };
    memory: { max: string | null; by?: string };
    workers: { min: number; max: number };
    replicas: { min: number; max: number };
    backoff_limit: { min: number; max: number };
  };
  node_pools: string[];
  /** named priority classes, lowest first (absent on older servers) */
  priority_classes?: string[];
  name_pattern: string;
  name_max: number;
}

export interface IInfo {
  version: string;
  backend: string;
  user: string;
  projects: string[];
  kinds: Kind[];
  gpus: number;
  virtual_gpus: boolean;
  form: IFormInfo;
  /** where the scheduler runs (absent on older servers): in this server, this server is the
   * shared hub service, or this server forwards to the shared service (`service` says which) */
  mode?: 'embedded' | 'service' | 'client';
  service?: { url?: string | null; name?: string | null };
}

export interface IRunaiEvent {
  id: number;
  at: string;
  type: string;
  project: string | null;
  workload: string | null;
  pod: string | null;
  message: string;
  /** live events of a workload: the workload as GET shows it now (null on Deleted); absent on replayed events */
  object?: IWorkload | null;
}

export interface IFieldError {
  field: string | null;
  message: string;
  allowed?: unknown;
}

export interface IErrorBody {
  error: IFieldError & { errors?: IFieldError[] };
}

export type GpuMode = 'none' | 'whole' | 'fraction' | 'memory';

/** `GET /runai/api/v1/workloads/{project}/{name}`: the workload with its latest events (newest first). */
export interface IWorkloadWithEvents extends IWorkload {
  events?: IRunaiEvent[];
}

export type DataSourceKind = 'host_path' | 'git';

export interface IDataSource {
  name: string;
  kind: DataSourceKind;
  path?: string | null;
  read_only?: boolean | null;
  url?: string | null;
  revision?: string | null;
  target?: string | null;
}

export type InjectAs = 'env' | 'file';

/** A credential as the API shows it: keys, never values. */
export interface ICredentialView {
  name: string;
  inject_as: InjectAs;
  keys: string[];
  mount_path?: string | null;
}
