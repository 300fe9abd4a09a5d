/** Talking to /runai/api/v1/ through Jupyter's ServerConnection (base URL, token, XSRF). */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IErrorBody } from './logic/types';

export const API = 'runai/api/v1';

/** An error answer of the REST API; `body` is `{"error": {message, field, allowed, errors}}`. */
export class RunaiApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: IErrorBody | null,
    message: string
  ) {
    super(message);
  }
}

export function apiUrl(path: string, settings: ServerConnection.ISettings = ServerConnection.makeSettings()): string {
  return URLExt.join(settings.baseUrl, API, path);
}

export async function requestAPI<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(apiUrl(path, settings), init, settings);
  } catch (error) {
    throw new RunaiApiError(0, null, `The Jupyter server cannot be reached: ${error}`);
  }
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const body = data && typeof data === 'object' && data.error ? (data as IErrorBody) : null;
    const message = body?.error?.message ?? `${response.status} ${response.statusText}`;
    throw new RunaiApiError(response.status, body, message);
  }
  return data as T;
}

export function postJSON<T>(path: string, body: unknown): Promise<T> {
  return requestAPI<T>(path, { method: 'POST', body: JSON.stringify(body) });
}

/**
 * GET a streaming text response (logs with follow, the event stream): `onText` gets each
 * chunk as it arrives; resolves when the stream ends; abort with `signal`.
 */
export async function streamText(path: string, onText: (text: string) => void, signal: AbortSignal, headers: Record<string, string> = {}): Promise<void> {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(apiUrl(path, settings), { method: 'GET', signal, headers, cache: 'no-store' }, settings);
  if (!response.ok) {
    let body: IErrorBody | null = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    throw new RunaiApiError(response.status, body, body?.error?.message ?? `${response.status} ${response.statusText}`);
  }
  if (!response.body) {
    onText(await response.text());
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    onText(decoder.decode(value, { stream: true }));
  }
  const rest = decoder.decode();
  if (rest) {
    onText(rest);
  }
}
