// BindProxy status page: polls /api/status once a second and redraws the tables.
// Every value from the proxy is set as text (a Kafka client.id is whatever the client sent).
"use strict";

const POLL_MS = 1000;
let paused = false;
let lastOk = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function td(content, cls) {
  return el("td", cls ? { class: cls } : null, content);
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function duration(seconds) {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.floor(seconds % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on a non-loopback address is not a secure context: fall back to a selection copy.
  const area = el("textarea", { readonly: "", class: "offscreen" });
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

// Long filters, commands and address lists wrap between their tokens, never inside one: each
// token stays on one line, a space between tokens may break, and so may the point after a
// comma in a set or list ({127.0.0.5,127.0.0.9}).
function tokens(text) {
  const fragment = document.createDocumentFragment();
  String(text).split(" ").forEach((token, i) => {
    if (i > 0) fragment.append(" ");
    token.split(/(?<=,)/).forEach((piece, j) => {
      if (j > 0) fragment.append(el("wbr"));
      fragment.append(el("span", { class: "tok" }, piece));
    });
  });
  return fragment;
}

function copyable(text, what) {
  const button = el("button", { type: "button", class: "copy", "data-copy": text, title: `copy the ${what}` }, "Copy");
  return el("span", { class: "filter" }, el("code", null, tokens(text)), button);
}

// A route's name stays whole on its line; a broker listener's (kafka/broker-1) may break after
// the slash only, never inside "shared-kafka" or "broker-1".
function routeName(name) {
  const fragment = document.createDocumentFragment();
  String(name).split(/(?<=\/)/).forEach((piece, i) => {
    if (i > 0) fragment.append(el("wbr"));
    fragment.append(el("span", { class: "tok" }, piece));
  });
  return el("span", { class: "route-name" }, fragment);
}

// A Wireshark filter and a tshark command side by side, or one above the other when narrow.
function captures(wireshark, tshark) {
  return el("div", { class: "captures" }, copyable(wireshark, "Wireshark display filter"), copyable(tshark, "tshark command"));
}

// How long a capture link records: the header's input, a whole number of seconds (10 when unset).
function captureSeconds() {
  const value = Math.floor(Number(document.getElementById("capture-seconds").value));
  return Number.isFinite(value) && value >= 1 ? Math.min(value, 3600) : 10;
}

function captureHref(query, seconds) {
  return `/api/capture?${query}&seconds=${seconds}`;
}

// A link that downloads pcapng of what the query picks, from the click on, for the set seconds.
function captureLink(query, what) {
  const seconds = captureSeconds();
  return el("a", { class: "capture", href: captureHref(query, seconds), download: "", "data-query": query,
    title: `download ${seconds} s of pcapng of ${what}, from now on` }, `capture ${seconds} s`);
}

// "from → to" that may break before the arrow.
// A route's TLS, per side, under its path: what is configured and what the latest connection negotiated.
function tlsLine(tls) {
  if (!tls) return null;
  const session = (p) => p ? ` (${p.version}, ${p.cipher}${p.subject ? `, ${p.subject}` : ""}${p.notAfter ? `, expires ${p.notAfter.slice(0, 10)}` : ""})` : "";
  const parts = [];
  if (tls.listener) parts.push(el("span", { class: "tls", title: tls.listener }, `TLS from clients${session(tls.clientPeer)}`));
  if (tls.upstream) parts.push(el("span", { class: tls.insecure ? "tls insecure" : "tls", title: tls.upstream },
    `TLS to upstream${tls.insecure ? " (INSECURE: not verified)" : ""}${session(tls.upstreamPeer)}`));
  return el("span", { class: "identity tls-line" }, ...parts.flatMap((p, i) => i ? ["; ", p] : [p]));
}

function path(from, to, fromClass) {
  return el("span", { class: "path" }, el("span", { class: fromClass }, from), " ", el("span", { class: "tok" }, `→ ${to}`));
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  try {
    await copyText(button.dataset.copy);
    button.textContent = "Copied";
    button.classList.add("copied");
  } catch {
    button.textContent = "Select and copy";
  }
  setTimeout(() => { button.textContent = "Copy"; button.classList.remove("copied"); }, 1500);
});

// Rows are matched by key and only cells whose content changed are swapped, so a copy button
// keeps its place (and its "Copied" feedback) and a selection in an unchanged cell survives.
function fill(tableId, rows, emptyId) {
  const body = document.querySelector(`#${tableId} tbody`);
  const existing = new Map([...body.rows].map((row) => [row.dataset.key, row]));
  const result = rows.map((row) => {
    const current = existing.get(row.dataset.key);
    if (!current || current.cells.length !== row.cells.length) return row;
    [...row.cells].forEach((cell, i) => {
      const old = current.cells[i];
      if (!old.querySelector("button.copied") && !old.isEqualNode(cell)) old.replaceWith(cell);
    });
    return current;
  });
  const same = result.length === body.rows.length && result.every((row, i) => row === body.rows[i]);
  if (!same) body.replaceChildren(...result);
  // Until the first answer the note says "Loading…": an empty table then would be a false "nothing here".
  const empty = document.getElementById(emptyId);
  empty.textContent = empty.dataset.empty;
  empty.classList.toggle("hidden", rows.length > 0);
}

// An intercepted connection is told by its process (bindproxy exec); others by client.id or address.
function identity(c) {
  const name = c.kafkaClientId ?? c.clientIdentity;
  return c.clientPid ? `pid ${c.clientPid} ${c.clientCommand ?? ""}${c.kafkaClientId ? ` (${c.kafkaClientId})` : ""}` : name;
}

function render(status) {
  fill("assignments", status.assignments.map((a) => el("tr", { "data-key": `${a.client}|${a.source}`, "data-source": a.source, "data-client": a.client },
    td(a.client, a.identityKind === "kafka-client-id" ? "wrap" : "addr"),
    td(a.source, "addr source"),
    td(tokens(a.routes.join(", ")), "wrap"),
    td(a.connections, "n"),
    td(bytes(a.bytesToUpstream), "n"),
    td(bytes(a.bytesToClient), "n"),
    td(el("div", { class: "captures" }, captures(a.wiresharkFilter, a.tsharkCommand), captureLink(a.captureQuery, "this client's connections"))))), "assignments-empty");

  fill("connections", status.connections.map((c) => {
    // The client's identity (a process under bindproxy exec, a Kafka client.id) under its address, when it says more than the address.
    const who = identity(c);
    const clientIp = c.client.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
    const upstream = c.originalDestination ? `${c.upstream} (original destination)` : c.upstream;
    return el("tr", { "data-key": c.id, "data-source": c.source, "data-route": c.route },
      td(routeName(c.route), "wrap-narrow"),
      td(el("div", { class: "stack" }, el("span", { class: "addr" }, c.client), who === clientIp ? null : el("span", { class: "identity" }, who)), "wrap-narrow"),
      td(path(c.source, upstream, "addr source"), "addr wrap-narrow"),
      td(bytes(c.bytesToUpstream), "n"),
      td(bytes(c.bytesToClient), "n"),
      td(duration(c.ageSeconds), "n"),
      td(tokens(c.state), `wrap-narrow ${c.state === "open" ? "state-open" : "state-other"}`),
      td(el("div", { class: "captures" }, copyable(c.wiresharkFilter, "Wireshark display filter"), captureLink(c.captureQuery, "this connection"))));
  }), "connections-empty");

  fill("routes", status.routes.map((r) => el("tr", { "data-key": r.name, "data-route": r.name },
    td(el("span", {},
      r.parent ? el("span", { title: `a broker of ${r.parent}, found in its metadata` }, routeName(r.name)) : routeName(r.name),
      r.runtime ? el("span", { class: "label", title: "made at run time by the fault API; not in the configuration file" }, "\u00a0(run time)") : null,
      r.toxics && r.toxics.length ? el("div", { class: "toxics", title: "active toxics (fault API)" }, r.toxics.join("; ")) : null), "wrap-narrow"),
    td(r.protocol),
    td(el("div", { class: "stack" }, path(tokens((r.bound.length ? r.bound : [r.listen]).join(", ")), r.upstream, null), tlsLine(r.tls)), "addr wrap-narrow"),
    td(el("span", { class: "list" }, tokens(r.sources), r.sourceCount > 1 ? `\u00a0(${r.sourceCount})` : null), "addr wrap"),
    td(r.activeConnections, "n"),
    td(captures(r.wiresharkFilter, r.tsharkCommand)))), "routes-empty");

  const up = status.connections.reduce((sum, c) => sum + c.bytesToUpstream, 0);
  const down = status.connections.reduce((sum, c) => sum + c.bytesToClient, 0);
  // Configured routes; a Kafka route's broker listeners (routes with a parent) are counted apart.
  const configured = status.routes.filter((r) => !r.parent).length;
  const brokers = status.routes.length - configured;
  document.getElementById("sum-routes").textContent = configured;
  document.getElementById("sum-routes-label").textContent = (configured === 1 ? "route" : "routes") +
    (brokers > 0 ? `, ${brokers} broker listener${brokers === 1 ? "" : "s"}` : "");
  document.getElementById("sum-connections").textContent = status.connections.length;
  document.getElementById("sum-clients").textContent = new Set(status.assignments.map((a) => a.client)).size;
  document.getElementById("sum-up").textContent = bytes(up);
  document.getElementById("sum-down").textContent = bytes(down);
  document.getElementById("sum-uptime").textContent = duration(status.uptimeSeconds);
}

function ms(value) {
  return value === null || value === undefined ? "–" : `${value < 10 ? value.toFixed(2) : value.toFixed(0)} ms`;
}

// One block per Kafka client: its requests per API, then its last requests (newest first).
function renderKafka(view) {
  const section = document.getElementById("kafka");
  section.classList.toggle("hidden", view.clients.length === 0);
  const blocks = view.clients.map((c) => {
    const apis = el("table", { class: "kafka-apis" },
      el("thead", null, el("tr", null, el("th", null, "API"), el("th", { class: "n" }, "Requests"), el("th", { class: "n" }, "Errors"),
        el("th", { class: "n" }, "p50"), el("th", { class: "n" }, "p99"))),
      el("tbody", null, ...c.apis.map((a) => el("tr", { "data-api": a.api },
        td(a.api), td(a.count, "n"), td(a.errors, a.errors > 0 ? "n error" : "n"), td(ms(a.p50Ms), "n"), td(ms(a.p99Ms), "n")))));
    const last = el("table", { class: "kafka-last" },
      el("thead", null, el("tr", null, el("th", null, "Time"), el("th", null, "Request"), el("th", null, "Broker route"),
        el("th", { class: "n" }, "Bytes"), el("th", { class: "n" }, "Latency"), el("th", null, "What it said"))),
      el("tbody", null, ...c.last.map((r) => el("tr", { class: r.error ? "error" : null },
        td(new Date(r.time).toLocaleTimeString(), "n"),
        td(`${r.api} v${r.version} #${r.correlationId}`, "wrap-narrow"),
        td(routeName(r.route), "wrap-narrow"),
        td(r.responseBytes === null ? `${r.requestBytes}` : `${r.requestBytes} / ${r.responseBytes}`, "n"),
        td(ms(r.latencyMs), "n"),
        td(tokens((r.error && !(r.summary ?? "").includes(r.error) ? [r.error, r.summary] : [r.summary]).filter((x) => x).join(" ") || "–"), "wrap")))));
    const total = c.apis.reduce((sum, a) => sum + a.count, 0);
    return el("div", { class: "kafka-client", "data-client": c.client, "data-route": c.route },
      el("h3", null, el("span", { class: "identity" }, c.client), " on ", routeName(c.route),
        el("span", { class: "label" }, ` · ${total} requests kept · ${c.errors} with errors${c.decoding ? " · bodies decoded" : ""}`)),
      el("div", { class: "kafka-grid" }, apis, last));
  });
  document.getElementById("kafka-clients").replaceChildren(...blocks);
  document.getElementById("kafka-memory").textContent =
    `The conversation holds ${bytes(view.bytes)} of at most ${bytes(view.totalBytes)} (${view.perClientRecords} requests or ${bytes(view.perClientBytes)} per client).`;
}

async function pollKafka() {
  const response = await fetch("/api/kafka/clients?watch=true", { cache: "no-store" });
  if (response.ok) renderKafka(await response.json());
}

async function poll() {
  if (!paused) {
    try {
      const response = await fetch("/api/status", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render(await response.json());
      await pollKafka();
      lastOk = Date.now();
      document.getElementById("indicator").className = "dot ok";
      document.getElementById("updated").textContent = `updated ${new Date(lastOk).toLocaleTimeString()}`;
    } catch (error) {
      document.getElementById("indicator").className = "dot stale";
      const since = lastOk ? ` since ${new Date(lastOk).toLocaleTimeString()}` : "";
      document.getElementById("updated").textContent = `proxy not answering${since} (${error.message})`;
    }
  }
  setTimeout(poll, POLL_MS);
}

// A new number of seconds applies to every capture link at once.
document.getElementById("capture-seconds").addEventListener("input", () => {
  const seconds = captureSeconds();
  for (const link of document.querySelectorAll("a.capture")) {
    link.href = captureHref(link.dataset.query, seconds);
    link.textContent = `capture ${seconds} s`;
    link.title = link.title.replace(/^download \d+ s/, `download ${seconds} s`);
  }
});

document.getElementById("pause").addEventListener("click", (event) => {
  paused = !paused;
  event.target.textContent = paused ? "Resume" : "Pause";
  event.target.setAttribute("aria-pressed", String(paused));
  if (paused) document.getElementById("updated").textContent = "paused";
});

poll();
