// Voice: place a call on a voice queue; the calls of the agents logged in at this console
// (answer, hang up; Ready and Not ready for calls); every agent's voice state.
"use strict";

pages.voice = (state) => {
  if (!Object.values(state.actors).includes("gc")) {
    fail("#error", "this topology has no Generic Connector (no gc actor)");
    return;
  }
  if (!state.voice_queues.length) fail("#error", "the Generic Connector has no queues (actors.gc.queues)");
  $("#calls").replaceChildren(...state.voice_queues.map((queue) =>
    el("button", {class: "primary", "data-queue": queue, on: {click: () => act("#error", () => api("/api/voice/call", {queue})
      .then((a) => { $("#placed").textContent = `call ${a.dialog} placed on ${queue}`; }))}}, `Place a call on ${queue}`)));
  $("#voice-ids").textContent = state.voice_agents.join(", ") || "none in the directory";
  const call = (agent, c) => el("div", {class: "row call", "data-dialog": c.id},
    el("span", {class: "state " + c.state}, c.state === "ALERTING" ? "RINGING" : c.state),
    el("span", {}, `${c.from} → ${c.to}`), el("span", {class: "muted"}, c.type),
    c.actions.includes("ANSWER") ? el("button", {class: "primary answer", on: {click: () =>
      act("#phone-error", () => api("/api/voice/action", {agent, dialog: c.id, action: "answer"}))}}, "Answer") : "",
    c.actions.includes("DROP") ? el("button", {class: "danger hangup", on: {click: () =>
      act("#phone-error", () => api("/api/voice/action", {agent, dialog: c.id, action: "hangup"}))}}, "Hang up") : "");
  let shown = "";   // the agents "Calls at this console" shows
  let drawn = 0;    // the version of the view drawn last: an older one (a late answer) is dropped
  const mine = (view) => {
    if (view.v < drawn) return;
    drawn = view.v;
    fail("#phone-error", view.error);
    const agents = Object.entries(view.agents);
    shown = agents.map(([id]) => id).sort().join(" ");
    $("#mine").replaceChildren(...(agents.length ? agents.map(([id, a]) => el("div", {class: "card", "data-agent": id},
      el("div", {class: "row"}, el("b", {}, id), el("span", {class: "muted"}, `extension ${a.extension}`),
        el("span", {class: "state " + a.state}, a.state || "-"), a.reason ? el("span", {class: "muted"}, a.reason) : "",
        el("span", {class: "grow"}),
        el("span", {class: "seg"}, ...[["READY", "Ready for calls", "go"], ["NOT_READY", "Not ready", "stop"]].map(
          ([s, label, look]) => el("button", {class: `${look} voice-${s.toLowerCase()}`, "aria-pressed": String(a.state === s),
            on: {click: () => act("#phone-error", () => api("/api/desk/state", {agent: id, state: s, mrd: "voice"}))}},
            label)))),
      a.calls.length ? a.calls.map((c) => call(id, c)) : el("p", {class: "muted"}, "no call")))
      : [el("p", {class: "muted"}, "No voice agent is logged in at this console.")]));
  };
  const team = (view) => {
    if (!view.heard) return;   // nothing heard from Comm yet
    // an agent logged in or out on the desk page: what this console holds in voice changed
    const here = view.agents.filter((a) => a.here && a.extension).map((a) => a.id).sort().join(" ");
    if (here !== shown) api("/api/voice").then(mine).catch(() => {});
    const rows = view.agents.filter((a) => a.mrds.voice);   // (a row holds the MRDs it is logged in on)
    $("#voice-agents tbody").replaceChildren(...(rows.length ? rows.map((a) => el("tr", {"data-agent": a.id},
      el("td", {}, a.id), el("td", {class: "left muted"}, a.here ? "this console" : a.simulated ? `${a.simulated} (simulated)` : ""),
      el("td", {class: "left"}, a.extension),
      el("td", {class: "left"}, el("span", {class: "state " + a.mrds.voice.state}, a.mrds.voice.state)),
      el("td", {class: "left"}, a.mrds.voice.reason), el("td", {}, duration(a.mrds.voice.for_s))))
      : [el("tr", {}, el("td", {class: "muted", colspan: "6"}, "no agent is logged in on voice"))]));
  };
  listen(["voice", "team"], {voice: mine, team},
         () => Promise.all([api("/api/voice").then(mine), api("/api/team").then(team)]));
};
