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
