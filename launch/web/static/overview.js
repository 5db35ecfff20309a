// Overview: every actor (state, pid, uptime, restarts, CPU, memory, messages/s), its
// buttons, the Chat Servers' scale, and lifecycle events as they happen.
"use strict";

pages.overview = (state) => {
  const render = (view) => {   // (#error is the actions' own: a redraw leaves it)
    if (view.down) { fail("#down", "the topology does not answer: " + view.down); return; }
    fail("#down");
    const rows = view.processes.map((p) => el("tr", {"data-actor": p.name},
      el("td", {}, p.name), el("td", {class: "left"}, p.role),
      el("td", {class: "left"}, el("span", {class: "state " + p.state}, p.state), p.reason ? ` ${p.reason}` : ""),
      el("td", {}, p.pid ?? "-"), el("td", {}, p.uptime ? seconds(p.uptime) : "-"), el("td", {}, p.restarts),
      el("td", {}, fmt(p.cpu_percent)), el("td", {}, fmt(p.rss_mb)), el("td", {}, fmt(p.in_per_s)),
      el("td", {}, fmt(p.out_per_s)),
      el("td", {}, ["restart", "stop", "start"].map((verb) => el("button", {
        class: verb === "stop" ? "danger" : "", on: {click: () => {
          if (verb === "stop" && p.role !== "chat" && !confirm(`Stop ${p.name}? Routing stops with it.`)) return;
          act("#error", () => api(`/api/actors/${verb}`, {name: p.name}));
        }},
      }, verb)))));
    $("#actors tbody").replaceChildren(...rows);
    document.querySelectorAll("input[data-scale]").forEach((input) => {   // what runs now, unless being edited
      if (!input.dataset.edited && document.activeElement !== input) {
        input.value = view.processes.filter((p) => p.name.startsWith(input.dataset.scale + ".")).length;
      }
    });
  };
  if (state.view.processes) render(state.view);
  // Chat Servers scale; Comm, the MRE and the GC bind the documented queues: one each
  $("#scale").replaceChildren(...Object.entries(state.actors).filter(([, role]) => role === "chat").map(([name, role]) => {
    const count = el("input", {type: "number", min: "0", value: (state.view.processes || [])
      .filter((p) => p.name.startsWith(name + ".")).length, "data-scale": name,
      on: {input: () => { count.dataset.edited = "1"; }}});   // what the person typed stays until it is used
    return el("span", {class: "row"}, el("b", {}, name), el("span", {class: "muted"}, role), count,
      el("button", {"data-scale-button": name, on: {click: () => act("#error",
        () => api("/api/actors/scale", {name, count: Number(count.value)})
          .then(() => { delete count.dataset.edited; }))}}, "Scale"));
  }));
  const event = (e) => el("div", {}, `${clock(e.time)} ${e.name} ${e.state}`,
                                   e.reason ? ` (${e.reason})` : "", e.failure ? ` ${e.failure}` : "");
  const none = el("div", {class: "muted", id: "no-events"}, "none since the console started");
  $("#events").replaceChildren(...(state.events.length ? state.events.slice().reverse().map(event) : [none]));
  listen(["overview", "events"], {overview: render, events: (e) => {
    none.remove();   // a real event: "none" is no longer true
    $("#events").prepend(event(e));
  }});
};
