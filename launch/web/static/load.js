// Load: start and stop a load on the running topology's Chat Servers, its live charts,
// and its reports once it ends.
"use strict";

pages.load = (state) => {
  const throughput = chart("#throughput-chart", ["offered", "created", "closed"]);
  const latency = chart("#latency-chart", ["p50", "p99"]);
  const agents = chart("#agents-chart", ["busy"], 160);
  const reports = (names) => $("#reports").replaceChildren(...names.map((name) =>
    el("a", {href: "/api/load/" + name, style: "margin-right:12px"}, name)));
  const status = (text) => { $("#status").textContent = text; };
  reports(state.load.reports);
  status(state.load.running ? "a load is running" : state.load.error || "");
  $("#form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = Object.fromEntries(new FormData($("#form")).entries());
    act("#error", () => api("/api/load/start", form));
  });
  $("#stop").addEventListener("click", () => act("#error", () => api("/api/load/stop", {})));
  listen(["load"], {load: (e) => {
    if (e.kind === "started") { status("running"); reports([]); }
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
      api("/api/state").then((st) => reports(st.load.reports));
    }
    if (e.kind === "failed") status("failed: " + e.reason);
  }});
};
