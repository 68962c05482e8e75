// The dashboard's only way to the service: fetch with the user's bearer token.
// Errors become ApiError(status, detail, field), the API's own {"detail", "field"} body;
// a 401 also fires "hwnas:unauthorized" on window so the app can ask to sign in again.

const KEY = "hwnas.token";

/** The signed-in token (this tab first, then a remembered one), or null. */
export function token() {
  return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY);
}

/** Keep `value` for this tab, or on this browser when `remember` is true. */
export function setToken(value, remember) {
  clearToken();
  (remember ? localStorage : sessionStorage).setItem(KEY, value);
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, detail, field = null) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.field = field;
  }
}

/**
 * Call the service. `path` is absolute ("/v1/devices", "/ui/api/meta").
 * Returns the parsed JSON body, or the Response itself when `raw` is true.
 */
export async function request(path, { method = "GET", body, raw = false, auth } = {}) {
  const headers = { Authorization: `Bearer ${auth ?? token() ?? ""}` };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, "The service cannot be reached: is `hwnas serve` running?");
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    let field = null;
    try {
      const problem = await response.json();
      detail = problem.detail ?? detail;
      field = problem.field ?? null;
    } catch {
      // not JSON: keep the status line
    }
    const error = new ApiError(response.status, String(detail), field);
    if (response.status === 401 && auth === undefined) {
      window.dispatchEvent(new CustomEvent("hwnas:unauthorized", { detail: error }));
    }
    throw error;
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

/** `request` under /v1. */
export function v1(path, options) {
  return request(`/v1${path}`, options);
}

/** Save a Response's body as a file, named by its Content-Disposition or `fallback`. */
export async function saveResponse(response, fallback) {
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const match = /filename="([^"]+)"/.exec(disposition);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = match ? match[1] : fallback;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return link.download;
}

/** Download `path` (a token-protected URL) as a file. */
export async function download(path, fallback) {
  return saveResponse(await request(path, { raw: true }), fallback);
}

const FINAL = new Set(["succeeded", "failed", "cancelled"]);

export function isFinal(state) {
  return FINAL.has(state);
}

let metaPromise = null;
const spaces = new Map();

/** What the forms offer (spaces, backends, estimators...): fetched once per page load. */
export function meta() {
  metaPromise ??= request("/ui/api/meta").catch((error) => {
    metaPromise = null;
    throw error;
  });
  return metaPromise;
}

/** A space with `params`: its cell count and slots (cached), or an arch decoded. */
export function spaceInfo(name, params, arch) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) query.append("param", `${key}=${value}`);
  if (arch !== undefined) query.append("arch", arch);
  const url = `/ui/api/spaces/${encodeURIComponent(name)}?${query}`;
  if (!spaces.has(url)) {
    spaces.set(url, request(url).catch((error) => {
      spaces.delete(url);
      throw error;
    }));
  }
  return spaces.get(url);
}

/** Wait until job `id` is final, calling `onUpdate(job)` each second; returns the job. */
export async function waitJob(ctx, id, onUpdate) {
  for (;;) {
    const job = await v1(`/jobs/${id}`);
    onUpdate(job);
    if (isFinal(job.state) || !ctx.alive) return job;
    await new Promise((resolve) => { setTimeout(resolve, 1000); });
  }
}
