// The live topology page: reads the API of the server that served it (with
// the bearer token the user pasted, kept in sessionStorage), draws units >
// groups > devices with the domain each group is on, and follows the event
// log: on each event the topology is fetched again (debounced), and a
// group's attempts are kept from the events themselves. A small form moves
// a group (attach, replace, detach) through the same API.
//
// The stream is read with fetch(), not EventSource, because EventSource
// cannot send an Authorization header. Servers without the stream (or a
// stream refused for load) are polled through the paged log instead.

const TOKEN_KEY = "iommu-arbiter.token";
/** Events replayed at load, so each group shows its recent attempts. */
const HISTORY = 500;
const ATTEMPTS_PER_GROUP = 4;
const LOG_LENGTH = 30;
const REFRESH_DEBOUNCE_MS = 120;
const POLL_MS = 1000;
/** While polling, try the stream again after this many polls. */
const POLLS_BEFORE_STREAM_RETRY = 30;
const TOPOLOGY_OPS = new Set(["create", "update", "delete"]);

const $ = (id) => document.getElementById(id);

const state = {
  topology: null,
  /** Attempt events, newest last, at most HISTORY. */
  attempts: [],
  lastSeq: 0,
  /** Bumped when the token changes: loops of an older generation stop. */
  generation: 0,
  /** Aborts the stream of the current generation. */
  streamAbort: null,
};

// ---- requests -------------------------------------------------------------

class HttpError extends Error {
  constructor(status, text) {
    super(`HTTP ${status}: ${text}`);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

function headers(extra = {}) {
  const t = token();
  return t ? { ...extra, authorization: `Bearer ${t}` } : extra;
}

async function getJson(path) {
  const res = await fetch(path, { headers: headers({ accept: "application/json" }), cache: "no-store" });
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail ?? detail; } catch { /* not a problem document */ }
    throw new HttpError(res.status, detail);
  }
  return res.json();
}

/** Every item of a paged collection. */
async function getAll(path) {
  const items = [];
  let after = null;
  for (;;) {
    const page = await getJson(`${path}?limit=1000${after === null ? "" : `&after=${after}`}`);
    items.push(...page.items);
    if (page.next === null || page.next === undefined) return items;
    after = page.next;
  }
}

// ---- topology ---------------------------------------------------------------

async function fetchTopology() {
  const [units, groups, devices, domains, containers, host] = await Promise.all([
    getAll("/v1/units"), getAll("/v1/groups"), getAll("/v1/devices"), getAll("/v1/domains"), getAll("/v1/containers"),
    getJson("/v1/host").catch(() => null),
  ]);
  return { units, groups, devices, domains, containers, host };
}

let refreshTimer = null;
let refreshing = false;
let refreshAgain = false;

/** Fetch the topology again soon; events in a burst share one fetch. */
function scheduleRefresh() {
  if (refreshTimer !== null) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    void refresh();
  }, REFRESH_DEBOUNCE_MS);
}

async function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    state.topology = await fetchTopology();
    showMessage(null);
    render();
  } catch (error) {
    handleError(error);
  } finally {
    refreshing = false;
    if (refreshAgain) {
      refreshAgain = false;
      scheduleRefresh();
    }
  }
}

// ---- events -----------------------------------------------------------------

function isAttempt(event) {
  return !TOPOLOGY_OPS.has(event.op) && (event.groupId !== null || event.deviceId !== null);
}

function takeEvent(event) {
  if (typeof event.seq !== "number" || event.seq <= state.lastSeq) return;
  state.lastSeq = event.seq;
  if (isAttempt(event)) {
    state.attempts.push(event);
    if (state.attempts.length > HISTORY) state.attempts.splice(0, state.attempts.length - HISTORY);
  }
  scheduleRefresh();
}

/** The seq of the newest event: the paged log answers nothing after it (searched, not scanned). */
async function lastSeqOfLog() {
  const anyAfter = async (seq) => (await getJson(`/v1/events?after=${seq}&limit=1`)).items.length > 0;
  if (!(await anyAfter(0))) return 0;
  let low = 0; // some event is after low
  let high = 1;
  while (await anyAfter(high)) {
    low = high;
    high *= 2;
  }
  // some event is after low, none after high
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (await anyAfter(mid)) low = mid; else high = mid;
  }
  return high;
}

function setStatus(name, text) {
  const el = $("status");
  el.dataset.state = name;
  el.textContent = text;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Read one stream until it ends. Resolves "ended" when the server closed it
 * (reconnect), rejects with HttpError when it was refused, or resolves
 * "unavailable" when this server has no stream (poll instead).
 */
async function readStream(generation) {
  state.streamAbort = new AbortController();
  const res = await fetch(`/v1/events`, {
    headers: headers({ accept: "text/event-stream", "last-event-id": String(state.lastSeq) }),
    cache: "no-store",
    signal: state.streamAbort.signal,
  });
  if (res.status === 401 || res.status === 403) throw new HttpError(res.status, "the token was refused");
  if (res.status !== 200 || !(res.headers.get("content-type") ?? "").startsWith("text/event-stream") || res.body === null) {
    await res.body?.cancel();
    return "unavailable";
  }
  setStatus("live", "live");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done || generation !== state.generation) {
      await reader.cancel().catch(() => {});
      return "ended";
    }
    buffer += value;
    // Messages end with a blank line (CRLF, LF or CR line ends).
    const messages = buffer.split(/\r\n\r\n|\n\n|\r\r/);
    buffer = messages.pop() ?? "";
    for (const message of messages) takeMessage(message);
  }
}

function takeMessage(message) {
  let data = "";
  let type = "message";
  for (const line of message.split(/\r\n|\n|\r/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data += (data ? "\n" : "") + value;
    else if (field === "event") type = value;
  }
  if (type !== "message") {
    // A gap (events pruned before they were read): the topology is what counts.
    scheduleRefresh();
    return;
  }
  if (data === "") return;
  try {
    takeEvent(JSON.parse(data));
  } catch {
    /* not an event: ignore */
  }
}

/** One round of polling the paged log, every page up to its end. */
async function pollOnce() {
  for (;;) {
    const page = await getJson(`/v1/events?after=${state.lastSeq}&limit=1000`);
    for (const event of page.items) takeEvent(event);
    if (typeof page.last === "number" && page.last > state.lastSeq) state.lastSeq = page.last;
    if (page.next === null || page.next === undefined || page.items.length === 0) return;
  }
}

async function follow(generation) {
  while (generation === state.generation) {
    let outcome;
    try {
      outcome = await readStream(generation);
    } catch (error) {
      if (error instanceof HttpError) return handleError(error);
      outcome = "unavailable";
    }
    if (generation !== state.generation) return;
    if (outcome === "ended") {
      setStatus("offline", "reconnecting…");
      await sleep(POLL_MS);
      continue;
    }
    // No stream here (or it failed): poll the paged log for a while.
    for (let i = 0; i < POLLS_BEFORE_STREAM_RETRY && generation === state.generation; i++) {
      try {
        await pollOnce();
        setStatus("polling", "live (polling)");
      } catch (error) {
        if (error instanceof HttpError && (error.status === 401 || error.status === 403)) return handleError(error);
        setStatus("offline", "offline, retrying…");
      }
      await sleep(POLL_MS);
    }
  }
}

// ---- start, token -------------------------------------------------------------

function handleError(error) {
  if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
    setStatus("unauthorized", "token needed");
    showMessage(error.status === 401
      ? "The API needs a bearer token: paste one (role reader or above) in the field above."
      : "This token may not read the topology: paste a token of role reader or above.");
  } else {
    setStatus("offline", "offline");
    showMessage(`Cannot read the API: ${error.message}`);
  }
}

function showMessage(text) {
  const el = $("message");
  el.hidden = text === null;
  el.textContent = text ?? "";
}

async function start() {
  const generation = ++state.generation;
  state.streamAbort?.abort();
  state.attempts = [];
  state.lastSeq = 0;
  setStatus("starting", "loading…");
  try {
    const end = await lastSeqOfLog();
    state.lastSeq = Math.max(0, end - HISTORY);
    // The recent history first (for each group's attempts), then the topology.
    await pollOnce();
    state.topology = await fetchTopology();
    showMessage(null);
    render();
  } catch (error) {
    return handleError(error);
  }
  if (generation === state.generation) await follow(generation);
}

function setUpToken() {
  const input = $("token");
  input.value = token();
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = input.value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    void start();
  });
  $("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    input.value = "";
    void start();
  });
}

// ---- the move form ----------------------------------------------------------------

/** Options of a select, keeping the chosen value when it still exists. */
function fillSelect(select, options) {
  const chosen = select.value;
  select.replaceChildren(...options.map(([value, label]) => h("option", { value, text: label })));
  if (options.some(([value]) => value === chosen)) select.value = chosen;
}

function fillMoveForm(topology) {
  fillSelect($("move-group"), topology.groups.map((g) => [String(g.id), `${g.id} ${g.name}`]));
  const unitName = new Map(topology.units.map((u) => [u.id, u.name]));
  fillSelect($("move-domain"), topology.domains.map((d) => [String(d.id),
    `${d.id} ${d.auto ? "automatic" : d.type}${d.name ? ` ${d.name}` : ""}${d.unitId !== null ? ` (${unitName.get(d.unitId) ?? `unit ${d.unitId}`})` : ""}`]));
}

function setUpMoveForm() {
  $("move-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const result = $("move-result");
    const owner = $("move-owner").value.trim();
    const body = { domainId: Number($("move-domain").value), ...(owner ? { owner } : {}) };
    result.className = "move-result";
    result.textContent = "…";
    try {
      const res = await fetch(`/v1/groups/${Number($("move-group").value)}/${$("move-op").value}`, {
        method: "POST", headers: headers({ "content-type": "application/json", accept: "application/json" }), body: JSON.stringify(body),
      });
      const answer = await res.json().catch(() => ({}));
      const outcome = res.ok ? { errno: null, soft: false } : { errno: answer.errno ?? `HTTP ${res.status}`, soft: answer.soft === true };
      result.className = `move-result attempt ${outcomeClass(outcome)}`;
      result.textContent = res.ok
        ? `${res.status}: group ${answer.group?.id} on domain ${answer.domain?.id}${answer.changed === false ? " (unchanged)" : ""}${answer.warning ? `; warning ${answer.warning.errno} ${answer.warning.reason}` : ""}`
        : `${res.status} ${outcome.errno}${outcome.soft ? " (soft)" : ""} ${answer.reason ?? ""}: ${answer.detail ?? answer.title ?? ""}`;
    } catch (error) {
      result.className = "move-result attempt hard";
      result.textContent = `not sent: ${error.message}`;
    }
  });
}

// ---- drawing ------------------------------------------------------------------

/** An element with attributes (class, data-*, text) and children. */
function h(tag, attributes = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") el.textContent = String(value);
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

function domainBadge(domain, id, note) {
  if (!domain) return h("span", { class: "dom", text: id === null ? "no domain" : `domain ${id}` });
  const kind = domain.auto ? "automatic" : domain.type;
  const name = domain.name ? ` ${domain.name}` : "";
  const title = [`domain ${domain.id}: ${domain.type}`, domain.auto ? `automatic (${domain.search})` : null,
    domain.containerId !== null ? `container ${domain.containerId}` : null, domain.owner ? `owner ${domain.owner}` : null,
    domain.config?.enforceCacheCoherency ? "enforces cache coherency" : null].filter(Boolean).join(", ");
  return h("span", {
    class: `dom type-${domain.type}${domain.auto ? " auto" : ""}`, title, "data-domain-id": domain.id, "data-domain-type": kind,
    text: `${kind} #${domain.id}${name}${note ? ` · ${note}` : ""}`,
  });
}

function outcomeClass(event) {
  return event.errno === null ? "ok" : event.soft ? "soft" : "hard";
}

function attemptLine(event, withGroup) {
  const target = event.domainId !== null ? ` → domain ${event.domainId}` : event.containerId !== null ? ` → container ${event.containerId}` : "";
  const where = withGroup ? [event.groupId !== null ? `group ${event.groupId}` : null, event.deviceId !== null ? `device ${event.deviceId}` : null].filter(Boolean).join(", ") : "";
  const result = event.errno === null ? "ok" : `${event.errno}${event.soft ? " (soft)" : ""} ${event.reason ?? ""}`.trim();
  const text = `${event.op}${where ? ` ${where}` : ""}${target}: ${result}${event.owner ? ` [${event.owner}]` : ""}`;
  return h("li", { class: `attempt ${outcomeClass(event)}`, title: event.detail ?? "", "data-seq": event.seq, "data-errno": event.errno ?? "", "data-soft": String(event.soft) },
    withGroup ? h("span", { class: "seq", text: `#${event.seq}` }) : null, text);
}

function groupBox(group, topology, byId, attemptsByGroup) {
  const domain = byId.domain.get(group.domainId);
  const note = group.domainId === group.defaultDomainId ? "default" : group.domainId === group.blockingDomainId ? "blocking" : null;
  const devices = group.deviceIds.map((id) => byId.device.get(id)).filter(Boolean);
  const attempts = (attemptsByGroup.get(group.id) ?? []).slice(-ATTEMPTS_PER_GROUP).reverse();
  return h("div", { class: "group", "data-group-id": group.id, "data-domain-id": group.domainId ?? "" },
    h("div", { class: "group-head" }, h("span", { text: group.name }), h("span", { class: "gid", text: `group ${group.id}` })),
    h("div", { class: "row" }, domainBadge(domain, group.domainId, note), group.owner ? h("span", { class: "owner", text: `owner ${group.owner}` }) : null),
    h("ul", { class: "devices" }, devices.map((d) => h("li", { "data-device-id": d.id },
      d.name,
      d.hostDriver ? h("span", { class: "flag", text: d.hostDriver }) : null,
      d.faulty ? h("span", { class: "flag bad", text: "faulty" }) : null,
      d.strandedOnDomainId !== null ? h("span", { class: "flag bad", text: `stranded on ${d.strandedOnDomainId}` }) : null,
      d.flags?.requiresIdentity ? h("span", { class: "flag", text: "RMRR" }) : null))),
    attempts.length > 0 ? h("ul", { class: "attempts" }, attempts.map((e) => attemptLine(e, false))) : null);
}

function render() {
  const topology = state.topology;
  if (!topology) return;
  const byId = {
    domain: new Map(topology.domains.map((d) => [d.id, d])),
    device: new Map(topology.devices.map((d) => [d.id, d])),
  };
  const attemptsByGroup = new Map();
  for (const event of state.attempts) {
    const groupId = event.groupId ?? byId.device.get(event.deviceId)?.groupId;
    if (groupId === undefined || groupId === null) continue;
    if (!attemptsByGroup.has(groupId)) attemptsByGroup.set(groupId, []);
    attemptsByGroup.get(groupId).push(event);
  }

  fillMoveForm(topology);
  $("host").textContent = topology.host ? `kernel profile ${topology.host.kernelProfile}` : "";

  const units = topology.units.map((unit) => {
    const groups = topology.groups.filter((g) => g.unitId === unit.id);
    const caps = unit.capabilities;
    const capText = [`${caps.addressWidth}-bit`, caps.snoopControl ? "snoop control" : "no snoop control",
      caps.dirtyTracking ? "dirty tracking" : null, caps.nesting ? "nesting" : null].filter(Boolean).join(" · ");
    return h("article", { class: `unit${unit.online ? "" : " offline"}`, "data-unit-id": unit.id },
      h("div", { class: "unit-head" },
        h("span", { class: "unit-name", text: unit.name }), h("span", { class: "driver", text: unit.driver }),
        unit.online ? null : h("span", { class: "attempt hard", text: "offline" }),
        h("span", { class: "caps", text: capText })),
      groups.length > 0
        ? h("div", { class: "groups" }, groups.map((g) => groupBox(g, topology, byId, attemptsByGroup)))
        : h("p", { class: "empty", text: "no groups" }));
  });
  $("units").replaceChildren(...(units.length > 0 ? units : [h("p", { class: "empty", text: "no IOMMU units" })]));

  const containers = topology.containers.map((c) => h("article", { class: "container", "data-container-id": c.id },
    h("div", { class: "group-head" }, h("span", { text: c.name }), h("span", { class: "gid", text: `${c.kind} · container ${c.id}` })),
    h("div", { class: "row" },
      c.owner ? h("span", { class: "owner", text: `owner ${c.owner}` }) : null,
      c.domainIds.length > 0
        ? c.domainIds.map((id) => {
          const d = byId.domain.get(id);
          return domainBadge(d, id, d ? `${d.attachedGroupCount} group${d.attachedGroupCount === 1 ? "" : "s"}` : null);
        })
        : h("span", { class: "empty", text: "no domains" }))));
  $("containers").replaceChildren(...(containers.length > 0 ? containers : [h("p", { class: "empty", text: "no containers" })]));

  const latest = state.attempts.slice(-LOG_LENGTH).reverse().map((e) => attemptLine(e, true));
  $("log").replaceChildren(...(latest.length > 0 ? latest : [h("li", { class: "empty", text: "no attempts yet" })]));
}

setUpToken();
setUpMoveForm();
void start();
