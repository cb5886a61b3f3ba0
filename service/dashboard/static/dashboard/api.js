// The JSON API as the signed-in tenant: the token lives in this tab's sessionStorage only.

const TOKEN_KEY = "bptt.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super(describeProblem(status, problem));
    this.status = status;
    this.problem = problem;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// One request; the decoded JSON answer, or ApiError. A 401 also signs the tab out.
export async function api(path, { method = "GET", body, contentType, headers = {}, token } = {}) {
  const sent = { ...headers, Authorization: `Bearer ${token ?? getToken() ?? ""}` };
  if (body !== undefined) sent["Content-Type"] = contentType ?? "application/json";
  const payload = body === undefined || typeof body === "string" ? body : JSON.stringify(body);
  const response = await fetch(path, { method, headers: sent, body: payload });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { title: text.slice(0, 200) };
  }
  if (!response.ok) {
    if (response.status === 401 && token === undefined) {
      clearToken();
      window.dispatchEvent(new CustomEvent("bptt:signed-out"));
    }
    throw new ApiError(response.status, data);
  }
  return { status: response.status, data };
}

// A file from the API (a model, a CSV) as a Blob, sent with the token as every call is: a plain
// link could not carry it. The file name is the one Content-Disposition gives, else `fallback`.
export async function fetchFile(path, { method = "GET", body, accept, fallback = "download" } = {}) {
  const headers = { Authorization: `Bearer ${getToken() ?? ""}` };
  if (accept) headers.Accept = accept;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      problem = null;
    }
    throw new ApiError(response.status, problem);
  }
  const named = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") ?? "");
  return { status: response.status, blob: await response.blob(), filename: named?.[1] ?? fallback,
    type: response.headers.get("Content-Type") ?? "" };
}

// One line from a problem document, as the CLI prints it: "422 Unprocessable Content: loc: msg".
export function describeProblem(status, problem) {
  const title = problem?.title ?? "";
  const errors = problem?.errors ?? [];
  if (errors.length) {
    const where = errors.slice(0, 5).map((e) => `${(e.loc ?? []).join(".")}: ${e.msg}`);
    return `${status} ${title}: ${where.join("; ")}`;
  }
  return `${status} ${title}: ${problem?.detail ?? ""}`.replace(/[: ]+$/, "");
}

// An Idempotency-Key: crypto.randomUUID needs a secure context, getRandomValues does not.
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
