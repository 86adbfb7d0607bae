// SCS agent console: plain JavaScript over the public case API (no build step).
// Every piece of text from the API is put into the page with textContent, never as markup:
// mention text and author names are written by whoever posts on social media.
"use strict";

const KEY = "scs.console.key";
const AGENT = "scs.console.agent";
const state = {
  cases: new Map(), // case_id -> CaseSummary
  selected: null, // case_id
  newest: null, // newest updated_at seen (ISO string), for reconnecting the stream
  stream: null, // AbortController of the running stream
  opening: 0, // number of the latest case request
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "className") node.className = value;
    else if (name.startsWith("data-")) node.setAttribute(name, String(value));
    else node[name] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// -- API -----------------------------------------------------------------------------------

class ApiError extends Error {}

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY), ...options.headers };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    signOut("The key was refused.");
    throw new ApiError("unauthorized");
  }
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new ApiError((body && (body.detail || body.title)) || response.statusText);
  return body;
}

async function act(action) {
  $("action-error").textContent = "";
  try {
    const summary = await api(`/v1/cases/${encodeURIComponent(state.selected)}/actions`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
      body: JSON.stringify({ actor: sessionStorage.getItem(AGENT), ...action }),
    });
    remember(summary);
    renderQueues();
    await openCase(state.selected);
    return true;
  } catch (error) {
    $("action-error").textContent = error.message;
    return false;
  }
}

// -- queues and live countdowns ------------------------------------------------------------

function remember(summary) {
  state.cases.set(summary.case.case_id, summary);
  if (!state.newest || summary.updated_at > state.newest) state.newest = summary.updated_at;
}

async function loadCases() {
  const page = await api("/v1/cases?limit=200");
  state.cases.clear();
  page.items.forEach(remember);
  renderQueues();
}

function shown(summary) {
  const wanted = $("status-filter").value;
  const status = summary.case.status;
  if (wanted === "all") return true;
  if (wanted === "active") return status !== "resolved";
  return status === wanted;
}

// The running clock closest to its deadline: what the countdown shows.
function nextClock(kase) {
  const running = (kase.clocks || []).filter((c) => !c.stopped_at);
  running.sort((a, b) => Date.parse(a.due_at) - Date.parse(b.due_at));
  return running[0] || null;
}

function countdown(clock, now) {
  if (!clock) return { text: "no clock", level: "none" };
  const left = Math.round((Date.parse(clock.due_at) - now) / 1000);
  const abs = Math.abs(left);
  const h = Math.floor(abs / 3600);
  const m = Math.floor((abs % 3600) / 60);
  const s = abs % 60;
  const pad = (n) => String(n).padStart(2, "0");
  const span = (h ? `${h}h ` : "") + `${pad(m)}m ${pad(s)}s`;
  if (left < 0) return { text: `${span} over`, level: "breached" };
  const level = now >= Date.parse(clock.warning_at) ? "warning" : "running";
  return { text: span, level };
}

function renderQueues() {
  const byQueue = new Map();
  for (const summary of state.cases.values()) {
    if (!shown(summary)) continue;
    const queue = summary.case.queue;
    if (!byQueue.has(queue)) byQueue.set(queue, []);
    byQueue.get(queue).push(summary);
  }
  const list = $("queue-list");
  list.replaceChildren();
  for (const queue of [...byQueue.keys()].sort()) {
    const items = byQueue.get(queue);
    // Closest to breach first, then the highest priority.
    items.sort((a, b) => {
      const da = nextClock(a.case), db = nextClock(b.case);
      const ta = da ? Date.parse(da.due_at) : Infinity, tb = db ? Date.parse(db.due_at) : Infinity;
      return ta - tb || a.case.priority.localeCompare(b.case.priority);
    });
    const rows = items.map((summary) => {
      const kase = summary.case;
      const row = el(
        "li",
        { className: "case-row", tabIndex: 0, "data-case-id": kase.case_id, "data-status": kase.status },
        el("span", { className: `priority ${kase.priority}` }, kase.priority),
        el("span", { className: "handle" }, "@" + kase.author_handle),
        el("span", { className: "status" }, kase.status.replace("_", " ")),
        el("span", { className: "assignee" }, kase.assignee || "unclaimed"),
        el("span", { className: "countdown", "data-case-id": kase.case_id }),
      );
      if (kase.case_id === state.selected) row.classList.add("selected");
      row.addEventListener("click", () => openCase(kase.case_id));
      row.addEventListener("keydown", (e) => e.key === "Enter" && openCase(kase.case_id));
      return row;
    });
    list.append(
      el("section", { className: "queue", "data-queue": queue },
        el("h2", {}, `${queue} (${items.length})`),
        el("ol", {}, ...rows)),
    );
  }
  tick();
}

function tick() {
  const now = Date.now();
  for (const node of document.querySelectorAll(".countdown[data-case-id]")) {
    const summary = state.cases.get(node.getAttribute("data-case-id"));
    if (!summary) continue;
    const shown = countdown(nextClock(summary.case), now);
    node.textContent = shown.text;
    node.className = `countdown ${shown.level}`;
  }
}

// -- one case ------------------------------------------------------------------------------

function facts(target, pairs) {
  target.replaceChildren(
    ...pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
  );
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

async function openCase(caseId) {
  state.selected = caseId;
  // The stream and an action may both reload the case: only the latest request is shown.
  const ticket = ++state.opening;
  const detail = await api(`/v1/cases/${encodeURIComponent(caseId)}`);
  if (ticket !== state.opening) return;
  remember(detail);
  const kase = detail.case;
  $("case").hidden = false;
  $("case").setAttribute("data-case-id", kase.case_id);
  $("case").setAttribute("data-status", kase.status);
  $("case-title").textContent = `${kase.priority} · @${kase.author_handle} · ${kase.queue}`;
  facts($("case-facts"), [
    ["Status", kase.status.replace("_", " ")],
    ["Assignee", kase.assignee || "unclaimed"],
    ["Channel", kase.channel],
    ["Kind", kase.kind],
    ["Language", kase.language],
    ["SLA", detail.sla_state],
    ["Opened", when(kase.opened_at)],
    ["Escalated to", (kase.escalated_to || []).join(", ")],
    ["Tags", (kase.tags || []).join(", ")],
  ]);
  enableActions(kase);
  $("case-clocks").replaceChildren(
    el("ul", { className: "clocks" }, ...(kase.clocks || []).map((c) =>
      el("li", {}, `${c.kind.replace("_", " ")}: ${c.state}, due ${when(c.due_at)}`))),
  );
  renderConversation(detail.conversation, detail.conversation_truncated);
  renderProfile(detail);
  renderSuggestions(detail);
  $("history").replaceChildren(...detail.history.map(historyEntry));
  renderQueues();
}

// One event of the case: what happened, which action by whom, and a note's text.
function historyEntry(entry) {
  const action = (entry.detail || {}).action;
  const item = el("li", {}, el("time", {}, when(entry.occurred_at)), " ", el("strong", {}, entry.type));
  if (action) {
    item.append(` by ${action.actor} (${action.kind})`);
    if (action.kind === "note" && action.text) item.append(el("q", { className: "note" }, action.text));
  }
  return item;
}

// Offer only what the case as it is allows (the API refuses the rest with a 409 anyway).
function enableActions(kase) {
  const resolved = kase.status === "resolved" || kase.status === "merged";
  const handedOff = kase.status === "handed_off";
  for (const id of ["act-claim", "act-resolve", "act-assign", "act-priority", "act-escalate",
    "act-merge", "act-link"]) {
    $(id).disabled = resolved;
  }
  $("act-reopen").disabled = kase.status !== "resolved";
  $("act-handoff").disabled = resolved || handedOff;
  $("act-outcome").disabled = !handedOff;
  $("priority-value").value = kase.priority;
}

function renderConversation(entries, truncated) {
  const items = entries.map(({ mention, classification, routing }) => {
    const who = mention.kind === "reply" ? "brand" : "@" + mention.author.handle;
    const item = el("li", { className: `mention ${mention.kind}`, "data-mention-id": mention.mention_id },
      el("div", { className: "meta" }, `${who} · ${mention.kind} · ${when(mention.created_at)}`),
      el("p", { className: "text" }, mention.text));
    if (classification) {
      item.append(el("div", { className: "classification" },
        `${classification.priority} · ${classification.sentiment.label} · ` +
        `${classification.intents.join(", ")} · crisis risk ${classification.crisis_risk}`),
        el("ul", { className: "reasons" }, ...classification.reasons.map((r) => el("li", {}, r))));
    }
    if (routing) {
      item.append(el("details", { className: "trace" },
        el("summary", {}, `routing: ${routing.playbook} → ${routing.queue} (${routing.priority})`),
        el("ul", {}, ...routing.trace.map((t) =>
          el("li", { className: t.matched ? "matched" : "" },
            `${t.rule}: ${t.matched ? "matched" : "no"}: ${t.why}`,
            t.applied.length ? ` → ${t.applied.join(", ")}` : "")))));
    }
    return item;
  });
  if (truncated) items.push(el("li", { className: "more" }, "older messages not shown"));
  $("conversation").replaceChildren(...items);
}

// The customer as the mentions describe them, and their profile across channels.
function renderProfile(detail) {
  const customer = [...detail.conversation].reverse().find((e) => e.mention.kind !== "reply");
  const author = customer ? customer.mention.author : {};
  const profile = detail.customer || {};
  facts($("profile"), [
    ["Handle", "@" + detail.case.author_handle],
    ["Name", author.display_name],
    ["Followers", author.followers],
    ["Verified", author.verified ? "yes" : "no"],
    ...Object.entries(profile).filter(([, v]) => typeof v !== "object").map(([k, v]) => [k, String(v)]),
  ]);
}

// Suggested texts: the playbook's acknowledgement, its templates filled with the case's facts,
// and the advice to move to a private message (never sent without the agent).
function renderSuggestions(detail) {
  const texts = [];
  for (const entry of detail.conversation) {
    if (entry.routing && entry.routing.acknowledgement) texts.push(entry.routing.acknowledgement);
  }
  for (const suggestion of detail.suggestions || []) {
    if (suggestion && typeof suggestion.text === "string" && !suggestion.auto) {
      texts.push(suggestion.text);
    }
  }
  $("suggestions").replaceChildren(...[...new Set(texts)].map((text) =>
    el("button", { type: "button", className: "suggestion", title: "Use as the reply",
      onclick: () => { $("reply-text").value = text; } }, text)));
}

// -- live stream (fetch, so the key travels in a header, never in a URL) --------------------

async function follow() {
  if (state.stream) state.stream.abort();
  const controller = new AbortController();
  state.stream = controller;
  while (!controller.signal.aborted) {
    try {
      const since = state.newest ? `?since=${encodeURIComponent(state.newest)}` : "";
      const response = await fetch(`/v1/cases/stream${since}`, {
        headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) },
        signal: controller.signal,
      });
      if (response.status === 401) return signOut("The key was refused.");
      if (!response.ok) throw new Error(response.statusText);
      setLive(true);
      await readEvents(response.body, onEvent);
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function readEvents(body, handle) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) await handle(event, data.join("\n"));
    }
  }
}

async function onEvent(event, data) {
  if (event === "resync") {
    await loadCases();
    return;
  }
  if (event !== "case") return;
  const summary = JSON.parse(data);
  remember(summary);
  renderQueues();
  if (summary.case.case_id === state.selected) await openCase(state.selected);
}

function setLive(on) {
  $("live").textContent = on ? "live" : "offline";
  $("live").className = on ? "live on" : "live off";
}

// -- sign in / out -------------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(KEY);
  if (state.stream) state.stream.abort();
  state.cases.clear();
  state.selected = null;
  $("desk").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function start() {
  $("login").hidden = true;
  $("desk").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = sessionStorage.getItem(AGENT);
  try {
    await loadCases();
  } catch (error) {
    if (!(error instanceof ApiError && error.message === "unauthorized")) {
      $("action-error").textContent = error.message;
    }
    return;
  }
  follow();
}

function wire() {
  $("login-go").addEventListener("click", () => {
    const key = $("login-key").value.trim();
    const agent = $("login-agent").value.trim();
    if (!key || !agent) {
      $("login-error").textContent = "Give the API key and your agent name.";
      return;
    }
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(AGENT, agent);
    $("login-key").value = "";
    start();
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("reload").addEventListener("click", loadCases);
  $("status-filter").addEventListener("change", renderQueues);
  $("act-claim").addEventListener("click", () =>
    act({ action: "assign", assignee: sessionStorage.getItem(AGENT) }));
  $("act-resolve").addEventListener("click", () => act({ action: "resolve" }));
  $("act-reopen").addEventListener("click", () => act({ action: "reopen" }));
  $("act-reply").addEventListener("click", async () => {
    if (await act({ action: "reply", text: $("reply-text").value })) $("reply-text").value = "";
  });
  $("act-note").addEventListener("click", async () => {
    if (await act({ action: "note", text: $("note-text").value })) $("note-text").value = "";
  });
  $("act-assign").addEventListener("click", () =>
    act({ action: "assign", assignee: $("assign-to").value.trim() }));
  $("act-priority").addEventListener("click", () =>
    act({ action: "priority", priority: $("priority-value").value }));
  $("act-escalate").addEventListener("click", () =>
    act({ action: "escalate", target: $("escalate-target").value.trim() }));
  $("act-handoff").addEventListener("click", () => {
    const target = $("handoff-target").value;
    const queue = $("handoff-queue").value.trim();
    act({ action: "handoff", target, ...(target === "queue" && queue ? { queue } : {}) });
  });
  $("act-outcome").addEventListener("click", () =>
    act({ action: "handoff_outcome", outcome: $("handoff-outcome").value }));
  $("act-merge").addEventListener("click", () =>
    act({ action: "merge", other: $("merge-other").value.trim() }));
  $("act-link").addEventListener("click", () =>
    act({ action: "link", conversation_id: $("link-conversation").value.trim() }));
  setInterval(tick, 1000);
  if (sessionStorage.getItem(KEY) && sessionStorage.getItem(AGENT)) start();
  else signOut("");
}

document.addEventListener("DOMContentLoaded", wire);
