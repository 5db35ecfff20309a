// Routing: each queue and the service level, agents by state, every logged-in agent (the
// team view), routed/s and routing latency charts, and a task traced and explained.
"use strict";

pages.routing = (state) => {
  const rate = chart("#rate-chart", ["routed/s"]);
  const latency = chart("#latency-chart", ["p50", "p99"]);
  const render = (view) => {
    if (view.down) { $("#level").textContent = "the topology does not answer: " + view.down; return; }
    $("#queues tbody").replaceChildren(...Object.entries(view.queues).map(([name, q]) => el("tr", {"data-queue": name},
      el("td", {}, name), el("td", {class: "left"}, q.mrd), el("td", {class: "waiting"}, q.waiting),
      el("td", {}, `${fmt(q.oldest_wait_s)} s`), el("td", {}, q.created ?? 0), el("td", {}, q.accepted ?? 0),
      el("td", {}, q.left ?? 0))));
    $("#level").textContent = view.service_level === null ? "service level: no task accepted yet"
      : `service level: ${(100 * view.service_level).toFixed(1)} % accepted within 20 s`;
    const mrds = Object.keys(view.agents_by_state);
    const states = Object.keys(view.agents_by_state[mrds[0]] || {}).filter((s) => s !== "LOGOUT");
    $("#agents thead").replaceChildren(el("tr", {}, el("th", {}, "state"), ...mrds.map((m) => el("th", {}, m))));
    $("#agents tbody").replaceChildren(...states.map((s) => el("tr", {}, el("td", {}, s),
      ...mrds.map((m) => el("td", {}, view.agents_by_state[m][s] ?? 0)))));
    rate.add(view.at, [view.routed_per_s]);
    latency.add(view.at, [view.route_p50_us === null ? null : view.route_p50_us / 1000,
                          view.route_p99_us === null ? null : view.route_p99_us / 1000]);
  };
  // every logged-in agent, as a supervisor's team view: a column group per MRD
  const team = (view) => {
    if (!view.heard) { $("#team-note").textContent = "looking..."; return; }
    const mrds = view.mrds || state.mrds;
    $("#team thead").replaceChildren(
      el("tr", {}, el("th", {rowspan: "2", class: "left"}, "agent"), el("th", {rowspan: "2", class: "left"}, "desk"),
        ...mrds.map((m) => el("th", {colspan: "4", class: "group"}, m))),
      el("tr", {}, ...mrds.flatMap(() => ["state", "reason", "in state", "tasks"].map((h, i) =>
        el("th", {class: i < 2 ? "left" : ""}, h)))));
    $("#team tbody").replaceChildren(...view.agents.map((a) => el("tr", {"data-agent": a.id},
      el("td", {class: "left"}, a.id), el("td", {class: "left muted"}, a.here ? "this console"
        : a.simulated ? `${a.simulated} (simulated)` : a.desk),
      ...mrds.flatMap((name) => {
        const m = a.mrds[name];
        if (!m) return [el("td", {class: "left muted"}, "-"), el("td", {}), el("td", {}), el("td", {})];
        return [el("td", {class: "left"}, el("span", {class: "state " + m.state}, m.state)),
                el("td", {class: "left"}, m.reason), el("td", {class: "for"}, duration(m.for_s)),
                el("td", {class: "tasks"}, String(m.tasks))];
      }))));
    $("#team-note").textContent = view.note || `${view.agents.length} logged in`;
  };
  if (state.view.queues) render(state.view);
  listen(["overview", "team"], {overview: render, team}, () => api("/api/team").then(team));
  $("#lookup").addEventListener("submit", (event) => {
    event.preventDefault();
    act("#task-error", async () => {
      const found = await api("/api/task/" + encodeURIComponent($("#task").value.trim()));
      const hops = found.hops.map((h) => el("tr", {}, el("td", {}, clock(h.at)),
        el("td", {class: "left"}, h.actor), el("td", {class: "left"}, h.queue), el("td", {class: "left"}, h.type),
        el("td", {class: "left"}, h.state || ""), el("td", {class: "left"}, h.code || ""),
        el("td", {class: "left"}, h.agent || "")));
      $("#task-result").replaceChildren(
        found.hops.length ? el("table", {}, el("tr", {}, ["time", "taken by", "queue", "message", "state", "code",
                                                            "agent"].map((h) => el("th", {class: "left"}, h))), hops)
                          : el("p", {class: "muted"}, "no actor remembers this task"),
        el("h2", {}, "The MRE's account"), el("pre", {}, JSON.stringify(found.explain, null, 2)));
    });
  });
};
