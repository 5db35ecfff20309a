// Customer: start a chat on a queue (the console's own queues first: there a person at the
// console's desk answers, elsewhere a simulated agent may), talk, leave.
"use strict";

pages.customer = (state) => {
  // the queues of the MRD the console's agents log into (a voice queue is the GC's)
  const own = state.console_queues;
  const queues = Object.entries(state.queues).filter(([, mrd]) => mrd === state.desk_mrd).map(([name]) => name)
    .sort((a, b) => own.includes(b) - own.includes(a));
  $("#queue").replaceChildren(...queues.map((name) => el("option", {value: name},
    own.includes(name) ? `${name} (an agent at this console)` : `${name} (any agent, simulated ones too)`)));
  const people = state.console_agents.slice(0, 3).join(", ");
  $("#hint").textContent = own.length ? `${own.join(", ")}: answered by an agent logged in on this console's ` +
    `Agent desk page (${people}${state.console_agents.length > 3 ? ", ..." : ""}), never by a simulated one.` : "";
  let chat = null;
  let drawn = 0;   // the version of the view drawn last: an older one (an action's late answer) is dropped
  const render = (view) => {
    if (view.v < drawn) return;
    drawn = view.v;
    $("#state").textContent = view.state;
    $("#state").className = "state " + view.state;
    $("#agent").textContent = view.agent ? `with ${view.agent}` : "";
    $("#transcript").replaceChildren(...transcript(view.transcript));
    $("#transcript").scrollTop = $("#transcript").scrollHeight;
    const over = view.state === "ENDED" || view.state === "CLOSED";
    $("#say").hidden = over;
    $("#leave").textContent = over ? "Start another chat" : "Leave";
    $("#leave").dataset.over = over ? "1" : "";
    $("#leave").className = over ? "primary" : "danger";
  };
  $("#start").addEventListener("submit", (event) => {
    event.preventDefault();
    act("#start-error", async () => {
      const view = await api("/api/desk/start", {customer: $("#customer").value, queue: $("#queue").value});
      chat = view.chat;
      listen(["chat:" + chat], {chat: render}, () => api("/api/desk/chat", {chat}).then(render));
      $("#start-box").hidden = true;
      $("#chat").hidden = false;
      render(view);
    });
  });
  $("#say").addEventListener("submit", (event) => {
    event.preventDefault();
    const line = $("#text").value;
    $("#text").value = "";
    act("#error", () => api("/api/desk/say", {chat, sender: "customer", text: line}).then(render));
  });
  $("#leave").addEventListener("click", () => {
    if ($("#leave").dataset.over) { location.reload(); return; }
    act("#error", () => api("/api/desk/leave", {chat}).then(render));
  });
};
