// Agent desk: log in as a directory agent; Ready and Not ready (the pressed one is the
// state); offers with whose customer, which queue and the time left to accept; chats with
// a time on each line; End (wrap-up), then Done; Transfer to an agent that can take it.
"use strict";

const READY_STATES = ["READY", "RESERVED", "ACTIVE", "BUSY", "WORK_READY"];
const NOT_READY_STATES = ["NOT_READY", "PENDING_NOT_READY", "LOGIN"];
const KIND = {console: "chat", simulated: "simulated customer", other: "another Chat Server's customer"};

function whose(t, offered) {   // what a person can do with a task whose conversation is not carried here
  const what = t.kind === "simulated"
    ? `A customer of the simulated Chat Server ${t.server}: a bot, which says nothing; no conversation is carried here.`
    : "A customer of another Chat Server: its conversation is carried there, not here.";
  return what + (offered ? " Accept it, then End it when done (or Transfer it); Decline sends it back to its queue."
    : " End it when done, or Transfer it.");
}

pages.desk = (state) => {
  // agents no simulated Chat Server desks, those of the console's own queues first
  $("#agent-ids").replaceChildren(...state.free_agents.map((id) => el("option", {value: id})));
  if (state.free_agents.length) $("#agent").placeholder = state.free_agents[0];
  let agent = null;
  let team = null;   // the team view (who can take a transfer), once it came
  const chosen = {};   // task -> the recipient picked in its Transfer list: survives redraws

  // only agents able to take it now (READY, or ACTIVE with room), and not a simulated Chat
  // Server's: the simulator never ends a task transferred to it
  const fillTransfer = (select, button, t) => {
    const ids = team === null ? [] : agentsIn(team, t.mrd, ["READY", "ACTIVE"])
      .filter((a) => !a.simulated && a.id !== agent).map((a) => a.id);
    const key = team === null ? "?" : ids.join(" ");
    if (select.dataset.ids === key) return;   // unchanged: an open list stays open
    select.dataset.ids = key;
    select.replaceChildren(...(ids.length ? ids.map((id) => el("option", {value: id}, id))
      : [el("option", {value: ""}, team === null ? "looking for agents..." : "no agent can take it now")]));
    if (ids.includes(chosen[t.task])) select.value = chosen[t.task];
    select.disabled = button.disabled = !ids.length;
  };
  const tick = () => document.querySelectorAll("[data-deadline]").forEach((node) => {
    const left = Math.max(0, (Number(node.dataset.deadline) - performance.now()) / 1000);
    node.textContent = left > 0 ? `${Math.ceil(left)} s to accept` : "going back to its queue (RONA)";
    node.classList.toggle("urgent", left < 10);
  });
  setInterval(tick, 250);

  const offer = (o) => el("div", {class: "card offer " + o.kind, "data-task": o.task},
    el("div", {class: "row"}, el("span", {class: "badge " + o.kind}, KIND[o.kind]),
      el("b", {class: "customer"}, o.customer || "a customer"),
      el("span", {class: "muted queue"}, o.queue ? `queue ${o.queue}` : "queue not known"),
      o.left === null || o.left === undefined ? el("span", {class: "muted"}, "")
        : el("span", {class: "left", "data-deadline": String(performance.now() + o.left * 1000)}),
      el("span", {class: "grow"}),
      el("button", {class: "primary accept", on: {click: () => task(o.task, "accept")}}, "Accept"),
      el("button", {class: "decline", title: "back to the head of its queue; you go Not ready, as after a missed offer",
                    on: {click: () => task(o.task, "decline")}}, "Decline")),
    o.kind === "console" ? "" : el("p", {class: "muted note"}, whose(o, true)));

  const chat = (t, typed) => {
    const wrap = t.state === "WRAP_UP";
    const head = el("div", {class: "row"}, el("span", {class: "badge " + t.kind}, KIND[t.kind]),
      el("b", {class: "customer"}, t.customer || "a customer"),
      el("span", {class: "muted"}, t.queue ? `queue ${t.queue}` : ""),
      el("span", {class: "state " + t.state}, wrap ? "WRAP-UP" : t.state));
    const body = t.chat ? el("div", {class: "transcript"}, transcript(t.chat.transcript))
      : el("p", {class: "muted note"}, whose(t, false));
    if (wrap) {
      return el("div", {class: "card chat wrapup", "data-task": t.task}, head, body,
        el("div", {class: "row"}, el("span", {class: "muted"}, "The chat has ended. Wrap up, then"),
          el("button", {class: "primary done", on: {click: () => task(t.task, "close")}}, "Done")));
    }
    const text = el("input", {size: "50", placeholder: "Type a message", class: "agent-text", autocomplete: "off"});
    text.value = typed[t.task] || "";
    const to = el("select", {class: "to", on: {change: () => { chosen[t.task] = to.value; }}});
    const transfer = el("button", {class: "transfer", on: {click: () => task(t.task, "transfer", to.value)}}, "Transfer");
    fillTransfer(to, transfer, t);
    return el("div", {class: "card chat", "data-task": t.task, "data-mrd": t.mrd}, head, body,
      t.chat ? el("form", {class: "row", on: {submit: (event) => { event.preventDefault();
        const line = text.value;
        text.value = "";   // before the redraw that brings the line back in the transcript
        act("#error", () => api("/api/desk/say", {chat: t.chat.chat, sender: agent, text: line})); }}},
        text, el("button", {class: "primary send"}, "Send")) : "",
      el("div", {class: "row"}, el("button", {class: "end", title: "the customer is told; you wrap up, then Done",
                                              on: {click: () => task(t.task, "end")}}, "End chat"),
        el("span", {class: "grow"}), el("span", {class: "muted"}, "transfer to"), to, transfer));
  };

  let drawn = 0;   // the version of the view drawn last: an older one (an action's late answer) is dropped
  const render = (view) => {
    if (view.v < drawn) return;
    drawn = view.v;
    const typed = {};   // what the agent was typing, and where, survives a redraw
    document.querySelectorAll(".chat").forEach((c) => {
      const input = c.querySelector(".agent-text");
      if (input) typed[c.dataset.task] = input.value;
    });
    const focused = document.activeElement && document.activeElement.closest(".chat");
    const focusedTask = focused ? focused.dataset.task : null;
    $("#state").textContent = view.state + (view.reason ? ` · ${view.reason}` : "");
    $("#state").className = "state " + view.state;
    for (const [button, pressed] of [["#ready", READY_STATES.includes(view.state)],
                                     ["#not-ready", NOT_READY_STATES.includes(view.state)]]) {
      $(button).setAttribute("aria-pressed", String(pressed));
    }
    if (view.state === "LOGOUT") {   // logged out, moved to another desk: log in again from here
      $("#desk").hidden = true;
      $("#login-box").hidden = false;
      fail("#login-error", view.reason ? `${view.agent} was logged out: ${view.reason}` : "");
      return;
    }
    const none = (what) => el("p", {class: "muted none"}, what);
    $("#offers").replaceChildren(...(view.offers.length ? view.offers.map(offer)
      : [none(view.state === "BUSY" ? "none: you hold as many chats as you may"
        : READY_STATES.includes(view.state) ? "none: waiting for a customer" : "none (you are not ready)")]));
    $("#chats").replaceChildren(...(view.tasks.length ? view.tasks.map((t) => chat(t, typed)) : [none("none")]));
    tick();
    document.querySelectorAll(".chat .transcript").forEach((box) => { box.scrollTop = box.scrollHeight; });
    const again = focusedTask && document.querySelector(`.chat[data-task="${focusedTask}"] .agent-text`);
    if (again) again.focus();
  };
  const onTeam = (view) => {
    team = view.heard ? view : null;   // (nothing heard yet: "looking for agents...")
    document.querySelectorAll(".chat[data-mrd]").forEach((card) => fillTransfer(card.querySelector("select.to"),
      card.querySelector("button.transfer"), {task: card.dataset.task, mrd: card.dataset.mrd}));
  };
  const task = (id, action, recipient = "") => act("#error",
    () => api("/api/desk/task", {agent, task: id, action, recipient}).then(render));
  const setState = (s) => act("#error", () => api("/api/desk/state", {agent, state: s}).then(render));
  $("#ready").addEventListener("click", () => setState("READY"));
  $("#not-ready").addEventListener("click", () => setState("NOT_READY"));
  $("#logout").addEventListener("click", () => setState("LOGOUT"));
  $("#login").addEventListener("submit", (event) => {
    event.preventDefault();
    act("#login-error", async () => {
      const id = $("#agent").value.trim();
      const view = await api("/api/desk/login", {agent: id, password: $("#password").value});
      agent = id;
      listen(["agent:" + id, "team"], {agent: render, team: onTeam},
             () => Promise.all([api("/api/desk/agent", {agent: id}).then(render), api("/api/team").then(onTeam)]));
      $("#who").textContent = id;
      $("#login-box").hidden = true;
      $("#desk").hidden = false;
      render(view);
    });
  });
};
