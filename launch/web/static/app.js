// mroute web: every page's script. No build step: plain JavaScript, uPlot for the charts.
"use strict";

const $ = (selector) => document.querySelector(selector);
let where = "";   // the header's line: which topology, which desk

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "on") for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

async function api(path, body) {
  const options = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"},
                                              body: JSON.stringify(body)};
  const answer = await fetch(path, options);
  const data = await answer.json().catch(() => ({error: answer.statusText}));
  if (!answer.ok) throw new Error(data.error || answer.statusText);
  return data;
}

function listen(channels, handlers, refresh) {
  // `refresh` fetches what the page shows afresh whenever the stream (re)opens: what was
  // published while it was not listening is not lost to the page
  const source = new EventSource("/api/stream?" + channels.map((c) => "ch=" + encodeURIComponent(c)).join("&"));
  if (refresh) source.addEventListener("open", () => refresh().catch(() => {}));
  source.addEventListener("open", () => { $("#where").classList.remove("lost"); $("#where").textContent = where; });
  source.addEventListener("error", () => {   // the browser tries again by itself; the page says so meanwhile
    $("#where").textContent = "connection to mroute web lost: retrying";
    $("#where").classList.add("lost");
  });
  for (const channel of channels) {
    source.addEventListener(channel, (message) => handlers[channel.split(":")[0]](JSON.parse(message.data)));
  }
  return source;
}

function fail(where, error) { $(where).textContent = error ? String(error.message || error) : ""; }

async function act(where, fn) {
  fail(where);
  try { return await fn(); } catch (error) { fail(where, error); }
}

const fmt = (value, digits = 1) => value === null || value === undefined ? "-" : Number(value).toFixed(digits);
const ms = (us) => us === null || us === undefined ? "-" : (us / 1000).toFixed(2);
const seconds = (s) => s < 60 ? `${s.toFixed(0)} s` : s < 3600 ? `${(s / 60).toFixed(0)} min` : `${(s / 3600).toFixed(1)} h`;

function chart(where, names, height = 220) {
  const width = $(where).clientWidth || 520;
  const colours = ["#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd"];
  const series = [{}, ...names.map((name, i) => ({label: name, stroke: colours[i % colours.length], width: 1.6}))];
  const plot = new uPlot({width, height, series, axes: [{}, {size: 56}], scales: {x: {time: true}}},
                         [[], ...names.map(() => [])], $(where));
  return {
    add(x, values) {
      const data = plot.data.map((column) => column.slice(-300));
      data[0].push(x);
      values.forEach((value, i) => data[i + 1].push(value));
      plot.setData(data);
    },
  };
}

// Overview -------------------------------------------------------------------------------
function overview(state) {
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
  const event = (e) => el("div", {}, `${new Date(e.time * 1000).toLocaleTimeString()} ${e.name} ${e.state}`,
                                   e.reason ? ` (${e.reason})` : "", e.failure ? ` ${e.failure}` : "");
  $("#events").replaceChildren(...(state.events.length ? state.events.slice().reverse().map(event)
    : [el("div", {class: "muted"}, "none since the console started")]));
  listen(["overview", "events"], {overview: render, events: (e) => $("#events").prepend(event(e))});
}

// Routing --------------------------------------------------------------------------------
function routing(state) {
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
  if (state.view.queues) render(state.view);
  listen(["overview"], {overview: render});
  $("#lookup").addEventListener("submit", (event) => {
    event.preventDefault();
    act("#task-error", async () => {
      const found = await api("/api/task/" + encodeURIComponent($("#task").value.trim()));
      const hops = found.hops.map((h) => el("tr", {}, el("td", {}, new Date(h.at * 1000).toLocaleTimeString()),
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
}

// Load -----------------------------------------------------------------------------------
function load(state) {
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
}

// Agent desk -----------------------------------------------------------------------------
function transcript(lines) {
  return lines.map((l) => el("div", {class: "line " + (l.by === "system" ? "system" : "")},
                             l.by === "system" ? "" : el("span", {class: "who"}, l.from), l.text));
}

function desk(state) {
  // agents no simulated Chat Server desks (another would be moved off its server)
  $("#agent-ids").replaceChildren(...state.free_agents.map((id) => el("option", {value: id})));
  let agent = null;
  const render = (view) => {
    const typed = {};   // what the agent was typing, and where, survives a redraw
    document.querySelectorAll(".chat").forEach((c) => {
      const input = c.querySelector(".agent-text");
      if (input) typed[c.dataset.task] = input.value;
    });
    const focused = document.activeElement && document.activeElement.closest(".chat");
    const focusedTask = focused ? focused.dataset.task : null;
    $("#state").textContent = view.state;
    $("#state").className = "state " + view.state;
    if (view.state === "LOGOUT") {   // logged out, moved to another desk: log in again from here
      $("#desk").hidden = true;
      $("#login-box").hidden = false;
      fail("#login-error", view.reason ? `${view.agent} was logged out: ${view.reason}` : "");
      return;
    }
    $("#offers").replaceChildren(...(view.offers.length ? view.offers.map((o) => el("div", {class: "card offer"},
      el("b", {}, o.chat ? o.chat.customer : "a task"), ` ${o.task} `,
      el("button", {class: "primary accept", on: {click: () => task(o.task, "accept")}}, "Accept"))) : ["none"]));
    $("#chats").replaceChildren(...(view.tasks.length ? view.tasks.map((t) => {
      const text = el("input", {size: "50", placeholder: "Type a message", class: "agent-text"});
      text.value = typed[t.task] || "";
      const to = el("select", {}, state.agents.filter((id) => id !== agent).map((id) => el("option", {}, id)));
      return el("div", {class: "card chat", "data-task": t.task},
        el("b", {}, t.chat ? t.chat.customer : "a task"), el("span", {class: "muted"}, ` ${t.task}`),
        t.chat ? el("div", {class: "transcript"}, transcript(t.chat.transcript)) : el("p", {class: "muted"},
          "(a customer of another Chat Server: no conversation here)"),
        t.chat ? el("form", {class: "row", on: {submit: (event) => { event.preventDefault();
          const line = text.value;
          text.value = "";   // before the redraw that brings the line back in the transcript
          act("#error", () => api("/api/desk/say", {chat: t.chat.chat, sender: agent, text: line})); }}},
          text, el("button", {class: "primary send"}, "Send")) : "",
        el("div", {class: "row"}, el("button", {class: "close", on: {click: () => task(t.task, "close")}}, "Close"),
          to, el("button", {on: {click: () => task(t.task, "transfer", to.value)}}, "Transfer")));
    }) : ["none"]));
    document.querySelectorAll(".chat .transcript").forEach((box) => { box.scrollTop = box.scrollHeight; });
    const again = focusedTask && document.querySelector(`.chat[data-task="${focusedTask}"] .agent-text`);
    if (again) again.focus();
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
      listen(["agent:" + id], {agent: render}, () => api("/api/desk/agent", {agent: id}).then(render));
      $("#who").textContent = id;
      $("#login-box").hidden = true;
      $("#desk").hidden = false;
      render(view);
    });
  });
}

// Customer -------------------------------------------------------------------------------
function customer(state) {
  // the queues of the MRD the console's agents log into (a voice queue is the GC's)
  $("#queue").replaceChildren(...Object.entries(state.queues).filter(([, mrd]) => mrd === state.desk_mrd)
    .map(([name]) => el("option", {value: name}, name)));
  let chat = null;
  const render = (view) => {
    $("#state").textContent = view.state;
    $("#state").className = "state " + view.state;
    $("#agent").textContent = view.agent ? `with ${view.agent}` : "";
    $("#transcript").replaceChildren(...transcript(view.transcript));
    $("#transcript").scrollTop = $("#transcript").scrollHeight;
    const closed = view.state === "CLOSED";
    $("#say").hidden = closed;
    $("#leave").textContent = closed ? "Start another chat" : "Leave";
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
    if ($("#state").textContent === "CLOSED") { location.reload(); return; }
    act("#error", () => api("/api/desk/leave", {chat}).then(render));
  });
}

// Voice ----------------------------------------------------------------------------------
function voice(state) {
  if (!Object.values(state.actors).includes("gc")) {
    fail("#error", "this topology has no Generic Connector (no gc actor)");
    return;
  }
  if (!state.voice_queues.length) fail("#error", "the Generic Connector has no queues (actors.gc.queues)");
  $("#calls").replaceChildren(...state.voice_queues.map((queue) =>
    el("button", {class: "primary", on: {click: () => act("#error", () => api("/api/voice/call", {queue})
      .then((a) => { $("#placed").textContent = `call ${a.dialog} placed on ${queue}`; }))}}, `Place a call on ${queue}`)));
  const render = (view) => {
    if (view.down) { fail("#error", "the topology does not answer: " + view.down); return; }
    const states = view.agents_by_state && view.agents_by_state.voice;
    if (!states) return;
    $("#voice-agents thead").replaceChildren(el("tr", {}, el("th", {}, "state"), el("th", {}, "agents")));
    $("#voice-agents tbody").replaceChildren(...Object.entries(states).filter(([s]) => s !== "LOGOUT")
      .map(([s, n]) => el("tr", {}, el("td", {}, s), el("td", {}, n))));
  };
  if (state.view.agents_by_state) render(state.view);
  listen(["overview"], {overview: render});
}

api("/api/state").then((state) => {
  where = `topology ${state.name} · desk ${state.desk}`;
  $("#where").textContent = where;
  ({overview, routing, load, desk, customer, voice})[document.body.dataset.page](state);
}).catch((error) => { document.querySelector("main").prepend(el("p", {class: "error"}, String(error.message))); });
