// JSON requests to the console API. Every POST and DELETE carries the CSRF
// token from sign-in; errors become ApiError with the server's error code.

import { t, tOr } from './i18n.js';

export const BASE = '/console/api';

let csrfToken = '';
let onSignedOut = () => {};

export function setCsrfToken(token) {
  csrfToken = token || '';
}

/** Sets the function called when a request answers 401 after sign-in. */
export function setSignedOutHandler(handler) {
  onSignedOut = handler;
}

export class ApiError extends Error {
  /** `status` is 0 when the request never reached the server. */
  constructor(status, code, message, body, retryAfter) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.body = body;
    this.retryAfter = retryAfter;
  }

  /** Returns the error in the UI language. */
  describe() {
    const error = (this.body && this.body.error) || {};
    const params = {
      status: this.status,
      message: this.message,
      agent: error.agent || '?',
      seconds: this.retryAfter ?? '?',
    };
    if (this.status === 0) {
      return t('error.network');
    }
    if (this.status === 404 && !tOr(`error.${this.code}`, '')) {
      return t('error.not_found', params);
    }
    return tOr(`error.${this.code}`, t('error.other', params), params);
  }
}

async function request(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
  }
  if (method !== 'GET') {
    headers['x-csrf-token'] = csrfToken;
  }

  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, 'network', String(error.message || error));
  }

  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch (error) {
      json = null;
    }
  }
  if (response.ok) {
    return json;
  }

  const error = (json && json.error) || {};
  const retryAfter = response.headers.get('retry-after');
  const apiError = new ApiError(
    response.status,
    error.code || `http_${response.status}`,
    error.message || text.slice(0, 200) || response.statusText,
    json,
    retryAfter === null ? undefined : Number(retryAfter),
  );
  if (response.status === 401 && path !== '/session' && path !== '/me') {
    onSignedOut();
  }
  throw apiError;
}

export const api = {
  get: (path) => request('GET', path),
  post: (path, body = {}) => request('POST', path, body),
  del: (path) => request('DELETE', path),
};

/** Returns the API path of a conversation, with the id encoded for a URL path. */
export function conversationPath(id, suffix = '') {
  return `/conversations/${encodeURIComponent(id)}${suffix}`;
}
