// bulkops console: live progress over EventSource, actions over fetch. No build step, no dependencies.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
const TERMINAL = new Set(["COMPLETED", "PARTIAL_SUCCESS", "FAILED", "CANCELLED"]);

// The same formats as the server's template filters, so a live update reads like a fresh page.
const num = (n) => (n == null ? "—" : Number(n).toLocaleString("en-US"));
const pct = (n) => Number(n).toFixed(1);
const rate = (n) => (n == null ? "—" : Number(n).toFixed(1));
// "2026-11-29 01:02:03 UTC", as the server's `ts` filter writes it.
const utc = (iso) => new Date(iso).toISOString().slice(0, 19).replace("T", " ") + " UTC";
function duration(s) {
  if (s == null) return "—";
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

function applyView(root, view) {
  const text = {
    percent: pct(view.percent_complete), processed_count: num(view.processed_count),
    total_count: num(view.total_count), success_count: num(view.success_count),
    failed_count: num(view.failed_count), orders_per_second: rate(view.orders_per_second),
    eta_seconds: duration(view.eta_seconds),
  };
  for (const el of root.querySelectorAll("[data-field]")) {
    const name = el.dataset.field;
    if (name in text) el.textContent = text[name];
    else if (name === "bar") { el.value = view.percent_complete; el.textContent = `${pct(view.percent_complete)} %`; }
    else if (name === "status") { el.textContent = view.status; el.className = `badge badge-${view.status.toLowerCase()}`; }
    else if (name === "source-note") el.hidden = view.progress_source !== "checkpoint";
    else if (name === "progress_at" && view.progress_at) el.textContent = utc(view.progress_at);
  }
}

// --- live progress ------------------------------------------------------------------------------

let liveSource = null;

// One stream per operation page. Its handlers look the page up when an event arrives, so content
// re-rendered in place keeps being updated; a new status re-renders the page (other actions apply).
function showLive() {
  const note = document.querySelector('article [data-field="live-note"]');
  if (note) note.hidden = !(liveSource && liveSource.readyState === EventSource.OPEN);
}

function watchOperation() {
  const article = document.querySelector("article[data-events]");
  if (liveSource) { showLive(); return; }
  if (!article) return;
  let status = article.dataset.status;
  const source = new EventSource(article.dataset.events);
  liveSource = source;
  const current = () => document.querySelector("article[data-op]");
  source.addEventListener("open", showLive);
  source.addEventListener("progress", (e) => {
    const view = JSON.parse(e.data);
    applyView(current(), view);
    if (view.status !== status) { status = view.status; refreshMain(); }
  });
  source.addEventListener("completed", (e) => {
    source.close();
    liveSource = null;
    applyView(current(), JSON.parse(e.data));
    refreshMain();
  });
}

function watchList() {
  const table = document.querySelector("table.ops[data-stream]");
  const rows = table ? [...table.querySelectorAll("tr[data-live]")] : [];
  if (!rows.length) return;
  const url = new URL(table.dataset.stream, location.href);
  for (const row of rows) url.searchParams.append("id", row.dataset.op);
  const source = new EventSource(url);
  const update = (e) => {
    const view = JSON.parse(e.data);
    const row = table.querySelector(`tr[data-op="${view.id}"]`);
    if (row) applyView(row, view);
  };
  source.addEventListener("progress", update);
  source.addEventListener("completed", update);
  source.addEventListener("done", () => source.close());
}

// Re-render the page's content in place (after an action, or once the operation ended): the
// server's page is the one source of what applies now; the live stream is not interrupted by a
// navigation.
async function refreshMain() {
  const response = await fetch(location.href, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = doc.querySelector("main");
  if (fresh) document.querySelector("main").replaceChildren(...fresh.childNodes);
  watchOperation();
}

// --- actions ------------------------------------------------------------------------------------

async function problemText(response) {
  try {
    const problem = await response.json();
    return `${problem.title || response.status}: ${problem.detail || ""}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function confirmAction(button) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = `${button.textContent.trim()}?`;
  document.getElementById("confirm-text").textContent = button.dataset.confirm;
  const commentRow = document.getElementById("confirm-comment-row");
  commentRow.hidden = !button.dataset.comment;
  document.getElementById("confirm-comment").value = "";
  dialog.returnValue = "";
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "ok") runAction(button);
    else button.focus();
  }, { once: true });
  dialog.showModal();
  document.getElementById("confirm-ok").focus();
}

async function runAction(button) {
  const error = button.closest("[data-actions]").querySelector(".action-error");
  error.hidden = true;
  button.disabled = true;
  const headers = { "X-CSRF-Token": csrf(), "Content-Type": "application/json" };
  // A new operation (retry, revert) is keyed by the page: a repeated click starts nothing twice.
  if (button.dataset.idempotencyKey) headers["Idempotency-Key"] = button.dataset.idempotencyKey;
  const comment = button.dataset.comment ? document.getElementById("confirm-comment").value : null;
  try {
    const response = await fetch(button.dataset.url, {
      method: "POST", headers, credentials: "same-origin",
      body: JSON.stringify(comment ? { comment } : {}),
    });
    if (!response.ok) {
      error.textContent = await problemText(response);
      error.hidden = false;
      button.disabled = false;
      button.focus();
      return;
    }
    const body = await response.json();
    if (button.dataset.follow) location.assign(`/console/operations/${body.id}`);
    else await refreshMain();
  } catch (exc) {
    error.textContent = `The request failed: ${exc}`;
    error.hidden = false;
    button.disabled = false;
  }
}

async function confirmStart(button) {
  const error = document.getElementById("start-error");
  error.hidden = true;
  button.disabled = true;
  const response = await fetch("/v1/bulk-operations", {
    method: "POST", credentials: "same-origin",
    headers: {
      "X-CSRF-Token": csrf(), "Content-Type": "application/json",
      "Idempotency-Key": button.dataset.idempotencyKey,
    },
    body: document.getElementById("create-body").textContent,
  });
  if (response.ok) {
    location.assign(`/console/operations/${(await response.json()).id}`);
    return;
  }
  error.textContent = await problemText(response);
  error.hidden = false;
  button.disabled = false;
}

document.addEventListener("click", (event) => {
  const action = event.target.closest("button[data-action]");
  if (action) { event.preventDefault(); confirmAction(action); return; }
  const start = event.target.closest("#confirm-start");
  if (start) { event.preventDefault(); confirmStart(start); }
});

// --- the new-operation form: show the fields of the chosen type and selection ------------------

function syncForm() {
  const form = document.getElementById("new-form");
  if (!form) return;
  const type = form.elements.operation_type.value;
  const selection = form.querySelector('input[name="selection"]:checked')?.value || "filter";
  for (const el of form.querySelectorAll("[data-type]")) el.hidden = el.dataset.type !== type;
  for (const el of form.querySelectorAll("[data-selection]")) el.hidden = el.dataset.selection !== selection;
}

document.addEventListener("change", (event) => {
  if (event.target.closest("#new-form")) syncForm();
});

document.addEventListener("DOMContentLoaded", () => {
  syncForm();
  watchList();
  watchOperation();
  const preview = document.getElementById("preview-h");
  if (preview) preview.focus();
});
