// Talking to the studio's HTTP API (the same API scripts use: /api/docs).
//
// The session token comes from the URL `inspire studio` printed (?token=...) or, after the
// first load, from the page itself (the server puts it in a meta tag when the browser shows
// the session cookie). State-changing requests send it as `Authorization: Bearer`.

const meta = document.querySelector('meta[name="inspire-token"]');
const fromUrl = new URLSearchParams(location.search).get('token');
export const token = fromUrl || (meta && meta.content && meta.content !== '__INSPIRE_TOKEN__' ? meta.content : '');

if (fromUrl) {
  // Keep the token out of the address bar (screenshots, shared screens); the cookie and this
  // module keep the session.
  const url = new URL(location.href);
  url.searchParams.delete('token');
  history.replaceState(null, '', url.pathname + url.search + url.hash);
}

export class ApiError extends Error {
  constructor(status, message, data = null) {
    super(message);
    this.status = status;
    this.data = data;  // the whole error body: {"error", "field", ...}
  }
}

async function request(method, url, body) {
  const headers = {};
  if (token) headers['Authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, 'the studio is not answering (was it stopped?)');
  }
  let data = null;
  const text = await response.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.error) || `${response.status} ${response.statusText}`, data);
  }
  return data;
}

export const getJSON = (url) => request('GET', url);
export const putJSON = (url, body) => request('PUT', url, body);
export const postJSON = (url, body) => request('POST', url, body === undefined ? {} : body);

/** base64 of uint8 -> Uint8Array */
export function bytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

let statusTimer = null;
/** One line in the header: what just happened, or what went wrong. */
export function say(message, { error = false, sticky = false } = {}) {
  const el = document.getElementById('status');
  el.textContent = message;
  el.classList.toggle('error', error);
  clearTimeout(statusTimer);
  if (!sticky) statusTimer = setTimeout(() => { el.textContent = ''; el.classList.remove('error'); }, error ? 8000 : 3000);
}

export function clock(seconds) {
  if (!Number.isFinite(seconds)) return '';
  const m = Math.floor(seconds / 60);
  const s = seconds - 60 * m;
  return `${m}:${s.toFixed(1).padStart(4, '0')}`;
}
