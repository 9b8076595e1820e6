// The one way the web app talks to the server: fetch under /api/v1 with the session cookie and CSRF token.
// A JSON error body {"error", "fix"} becomes a thrown ApiError; `reportError` shows it to the user.

import { showError } from "./dom";

export const API_BASE = "/api/v1";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** An error the server answered with: its HTTP status, the problem and how to fix it. */
export class ApiError extends Error {
  readonly status: number;
  readonly fix: string;
  /** The whole JSON body (a 409 of a stale write carries the stored version as `current`). */
  readonly body: unknown;

  constructor(status: number, problem: string, fix: string, body: unknown = undefined) {
    super(problem);
    this.name = "ApiError";
    this.status = status;
    this.fix = fix;
    this.body = body;
  }
}

export interface RequestOptions {
  method?: string;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as multipart/form-data (uploads). */
  form?: FormData;
  query?: Record<string, string | number | undefined>;
  signal?: AbortSignal;
}

/** The value of a readable cookie, or undefined. */
export function cookie(name: string): string | undefined {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return undefined;
}

/** The URL of an API path (`/projects/x`) with optional query parameters. */
export function apiUrl(path: string, query: RequestOptions["query"] = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const qs = params.toString();
  return `${API_BASE}${path}${qs ? `?${qs}` : ""}`;
}

async function failure(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: unknown; fix?: unknown };
    if (typeof body.error === "string") {
      return new ApiError(response.status, body.error, typeof body.fix === "string" ? body.fix : "", body);
    }
  } catch {
    // not JSON: fall through to a generic message
  }
  return new ApiError(response.status, `The server answered ${response.status} ${response.statusText}`.trim(),
    "Try again; if it keeps failing, look at the server's log.");
}

/** Send a request to the API; returns the response when it is 2xx, else throws its ApiError. */
export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const method = (options.method ?? (options.json !== undefined || options.form ? "POST" : "GET")).toUpperCase();
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: BodyInit | undefined;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.form) {
    body = options.form;
  }
  if (UNSAFE.has(method)) {
    const csrf = cookie("eoengine_csrf");
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  let response: Response;
  try {
    response = await fetch(apiUrl(path, options.query), {
      method, headers, body, credentials: "same-origin", signal: options.signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "Cannot reach the server", "Check that the eoengine server is running and reachable.");
  }
  if (!response.ok) throw await failure(response);
  return response;
}

/** Call the API; returns parsed JSON (or text for non-JSON answers, undefined for 204). Throws ApiError. */
export async function api<T = unknown>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await request(path, options);
  if (response.status === 204) return undefined as T;
  const type = response.headers.get("Content-Type") ?? "";
  return (type.includes("json") ? await response.json() : await response.text()) as T;
}

/** Show an error to the user; a 401 sends them to the sign-in page. Other errors are rethrown. */
export function reportError(err: unknown): void {
  if (err instanceof ApiError) {
    if (err.status === 401) { // a page left behind may still answer 401 after the first one sent the user there
      if (!location.hash.startsWith("#/signin")) location.hash = `#/signin?next=${encodeURIComponent(location.hash)}`;
      return;
    }
    showError(err.message, err.fix);
    return;
  }
  if (err instanceof DOMException && err.name === "AbortError") return;
  throw err;
}
