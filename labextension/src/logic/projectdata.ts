/** A project's data sources and credentials (what `runai data-source` and `runai credential` do):
 * the add forms' bodies, where server errors go, and one-line summaries. Pure functions.
 * Credential values only ever pass through `buildCredential`'s result, on their way to the server. */

import { DataSourceKind, ICredentialView, IDataSource, IErrorBody, IFieldError, InjectAs } from './types';

export interface IDataSourceState {
  name: string;
  kind: DataSourceKind;
  path: string;
  readOnly: boolean;
  url: string;
  revision: string;
  target: string;
}

export function emptyDataSource(): IDataSourceState {
  return { name: '', kind: 'host_path', path: '', readOnly: true, url: '', revision: '', target: '' };
}

/** The body of `POST .../data-sources`: only the fields of its kind; empty optional fields left out. */
export function buildDataSource(s: IDataSourceState): Record<string, unknown> {
  const body: Record<string, unknown> = { name: s.name.trim(), kind: s.kind };
  if (s.kind === 'host_path') {
    body.path = s.path.trim();
    body.read_only = s.readOnly;
  } else {
    body.url = s.url.trim();
    if (s.revision.trim()) {
      body.revision = s.revision.trim();
    }
  }
  if (s.target.trim()) {
    body.target = s.target.trim();
  }
  return body;
}

export interface ISecretRow {
  key: string;
  value: string;
}

export interface ICredentialState {
  name: string;
  injectAs: InjectAs;
  mountPath: string;
  rows: ISecretRow[];
}

export function emptyCredential(): ICredentialState {
  return { name: '', injectAs: 'env', mountPath: '', rows: [{ key: '', value: '' }] };
}

export interface IBuiltCredential {
  body: Record<string, unknown> | null;
  /** problems found before sending: field -> message (`data.N` is row N) */
  errors: Record<string, string>;
}

/**
 * The body of `POST .../credentials`. Rows with neither key nor value are skipped; a value
 * without a key, or a key given twice, is refused here (the server would never see the row).
 */
export function buildCredential(s: ICredentialState): IBuiltCredential {
  const errors: Record<string, string> = {};
  const data: Record<string, string> = {};
  s.rows.forEach((row, i) => {
    const key = row.key.trim();
    if (!key && !row.value) {
      return;
    }
    if (!key) {
      errors[`row.${i}`] = 'give this value a key (a variable or file name)';
    } else if (key in data) {
      errors[`row.${i}`] = `the key ${key} is given twice`;
    } else {
      data[key] = row.value;
    }
  });
  if (!Object.keys(data).length && !Object.keys(errors).length) {
    errors['row.0'] = 'add at least one key with its value';
  }
  if (Object.keys(errors).length) {
    return { body: null, errors };
  }
  const body: Record<string, unknown> = { name: s.name.trim(), inject_as: s.injectAs, data };
  if (s.injectAs === 'file' && s.mountPath.trim()) {
    body.mount_path = s.mountPath.trim();
  }
  return { body, errors };
}

export interface IPlaced {
  /** form field -> messages; credential keys go to `row.N` (the row whose key it is) */
  byField: Record<string, string[]>;
  general: string[];
}

/**
 * Put each server error beside its field. `fields` are the form's field names
 * (`name`, `path`, ...); `data.KEY` goes to the row holding KEY (`rows`), `data` to the first row.
 */
export function placeProjectDataErrors(body: IErrorBody | null | undefined, fields: string[], rows: ISecretRow[] = [], fallback = 'The server refused it'): IPlaced {
  const out: IPlaced = { byField: {}, general: [] };
  const error = body?.error;
  if (!error) {
    out.general.push(fallback);
    return out;
  }
  const list: IFieldError[] = error.errors && error.errors.length ? error.errors : [error];
  const put = (id: string, message: string) => (out.byField[id] = out.byField[id] ?? []).push(message);
  for (const e of list) {
    const field = e.field ?? '';
    if (field === 'data') {
      put('row.0', e.message);
    } else if (field.startsWith('data.')) {
      const key = field.slice('data.'.length);
      const index = rows.findIndex(r => r.key.trim() === key);
      put(`row.${Math.max(0, index)}`, e.message);
    } else if (field === 'read_only') {
      put('access', e.message);
    } else if (fields.includes(field)) {
      put(field, e.message);
    } else {
      out.general.push(e.message);
    }
  }
  return out;
}

/** "/datasets/imagenet (read-only)", "https://…/repo.git @ main". */
export function dataSourceSource(d: IDataSource): string {
  if (d.kind === 'git') {
    return `${d.url ?? ''}${d.revision ? ` @ ${d.revision}` : ''}`;
  }
  return d.path ?? '';
}

export function dataSourceAccess(d: IDataSource): string {
  if (d.kind === 'git') {
    return 'cloned at start';
  }
  return d.read_only === false ? 'read-write' : 'read-only';
}

/** "env: HF_TOKEN, OTHER" or "files in .credentials/kube: config". */
export function credentialSummary(c: ICredentialView): string {
  const keys = c.keys.join(', ');
  return c.inject_as === 'env' ? `variables ${keys}` : `files ${keys} in ${c.mount_path ?? `.credentials/${c.name}`}`;
}

/** A field's hint for the data-source target, from the name: where it appears by default. */
export function defaultTarget(name: string): string {
  return `data/${name.trim() || 'NAME'}`;
}
