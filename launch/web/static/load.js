// Load: start and stop a load on the running topology's Chat Servers, with a scenario if
// one is given, its live charts, and its reports once it ends.
"use strict";

// a scenario's behaviours (wire/behaviour.py's to_json) and voice calls in a sentence
function describe({fields, behaviour: b, voice}) {
  const parts = [], pct = (share) => `${+(share * 100).toFixed(1)} %`;
  if (Object.keys(fields).length) parts.push("sets " + Object.keys(fields).join(", "));
  const queues = Object.entries(b.queues || {});
  if (queues.length) {
    parts.push("customers choose " + queues.map(([q, w]) => `${q} (weight ${w}` +
      (b.priority && q in b.priority ? `, priority ${b.priority[q]})` : ")")).join(", "));
  }
  if (b.ignore_offer) parts.push(`${pct(b.ignore_offer)} of offers left to time out (RONA)`);
  if (b.breaks) parts.push(`NOT_READY breaks every ${b.breaks.every} s for ${b.breaks.length} s`);
  if (b.shifts) parts.push(`${pct(b.shifts.logout)} of agents log out every ${b.shifts.every} s for ${b.shifts.away} s`);
  if (b.transfer) parts.push(`${pct(b.transfer)} of accepted chats transferred to another agent`);
  if (b.conference) parts.push(`${pct(b.conference)} of accepted chats conferenced with another agent`);
  if (voice) parts.push(`${voice.calls_per_s} voice calls a second on ${voice.queue} (talk ${voice.talk}, ring ${voice.ring})`);
  return "Scenario valid: " + (parts.join("; ") || "it sets nothing") + ".";
}

pages.load = (state) => {
  const throughput = chart("#throughput-chart", ["offered", "created", "closed"]);
  const latency = chart("#latency-chart", ["p50", "p99"]);
  const agents = chart("#agents-chart", ["busy"], 160);
  const reports = (names) => $("#reports").replaceChildren(...names.map((name) =>
    el("a", {href: "/api/load/" + name, style: "margin-right:12px"}, name)));
  const status = (text) => { $("#status").textContent = text; };
  // the scenario the fields were last filled from: a field changed after that wins, as a flag does
  let filledFrom = "";
  const fill = (fields) => {
    for (const [name, value] of Object.entries(fields)) {
      const input = $("#form").elements[name];
      if (!input) continue;
      if (input.tagName === "SELECT" && ![...input.options].some((o) => o.value === value)) {
        input.append(el("option", {}, value));   // steps:3, say: the list has only steps:4
      }
      input.value = value;
    }
  };
  const check = async () => {
    const text = $("#scenario").value;
    fail("#scenario-error");
    $("#scenario-status").textContent = "";
    if (!text.trim()) { filledFrom = text; return true; }
    try {
      const found = await api("/api/load/check", {scenario: text});
      fill(found.fields);
      filledFrom = text;
      $("#scenario-status").textContent = describe(found);
      return true;
    } catch (error) { fail("#scenario-error", error); return false; }
  };
  reports(state.load.reports);
  status(state.load.running ? "a load is running" : state.load.error || "");
  if (state.load.running && state.load.form.scenario) $("#scenario").value = filledFrom = state.load.form.scenario;
  $("#scenario").addEventListener("change", check);
  $("#check").addEventListener("click", check);
  $("#clear").addEventListener("click", () => { $("#scenario").value = ""; $("#scenario-file").value = ""; check(); });
  $("#scenario-file").addEventListener("change", async () => {
    const file = $("#scenario-file").files[0];
    if (!file) return;
    $("#scenario").value = await file.text();
    check();
  });
  $("#form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("#error", async () => {
      if ($("#scenario").value !== filledFrom && !(await check())) return;   // its error is on the page
      const form = Object.fromEntries(new FormData($("#form")).entries());
      return api("/api/load/start", {...form, scenario: $("#scenario").value});
    });
  });
  $("#stop").addEventListener("click", () => act("#error", () => api("/api/load/stop", {})));
  const figures = (s) => {
    const queues = Object.entries(s.queues || {});
    const table = queues.length ? el("table", {id: "queue-figures"},
      el("tr", {}, ["queue customers chose", "created", "accepted", "abandoned", "wait p50", "p90", "p99"]
        .map((h) => el("th", {}, h))),
      queues.map(([name, q]) => el("tr", {}, el("td", {}, name),
        [q.created, q.accepted, q.abandoned].map((n) => el("td", {}, n)),
        ["wait_p50_ms", "wait_p90_ms", "wait_p99_ms"].map((k) => el("td", {}, q[k] === null ? "-" : `${fmt(q[k])} ms`))))) : "";
    const done = Object.entries(s.behaviours || {});
    $("#figures").replaceChildren(table, done.length ? el("p", {id: "behaviour-figures"},
      "What the agents did: " + done.map(([key, n]) => `${key} ${n}`).join(", ")) : "");
  };
  listen(["load"], {load: (e) => {
    if (e.kind === "started") { status("running"); reports([]); $("#figures").replaceChildren(); }
    if (e.kind === "row") {
      const r = e.row, at = Date.now() / 1000;
      throughput.add(at, [r.offered_per_s, r.created_per_s, r.closed_per_s]);
      latency.add(at, [r.route_p50_us === null ? null : r.route_p50_us / 1000,
                       r.route_p99_us === null ? null : r.route_p99_us / 1000]);
      agents.add(at, [(r.agents.ACTIVE || 0) + (r.agents.BUSY || 0)]);
      status(`${r.phase} at ${r.t.toFixed(0)} s: ${r.created} created, ${r.closed} closed, ${r.waiting} waiting`);
    }
    if (e.kind === "done") {
      const s = e.summary;
      status(`done: ${s.created} created, ${s.closed} closed, ${s.abandoned} abandoned, ${s.lost} lost; ` +
             `${s.closed_per_s} closed/s; routing p50 ${ms(s.route_p50_us)} ms, p99 ${ms(s.route_p99_us)} ms`);
      figures(e);
      api("/api/state").then((st) => reports(st.load.reports));
    }
    if (e.kind === "failed") status("failed: " + e.reason);
  }});
};
