// mroute web: what every page shares. No build step: plain JavaScript, uPlot for the charts.
// Each page's own script (overview.js, desk.js, ...) registers itself in `pages`; once both
// are loaded, the console's state is fetched and the page drawn.
"use strict";

const $ = (selector) => document.querySelector(selector);
const pages = {};
let where = "";   // the header's line: which topology, which desk

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "on") for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else if (key === "class") node.className = value;
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value === true ? "" : value);
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
const pad = (n) => String(n).padStart(2, "0");
// a wall-clock time (seconds since the epoch) as 24-hour HH:MM:SS: the same on every axis and line
function clock(epochSeconds) {
  const d = new Date(epochSeconds * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
// how long (seconds) as a team view shows it: 0:42, 12:05, 1:02:03
function duration(s) {
  if (s === null || s === undefined) return "-";
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

function chart(where, names, height = 220) {
  const width = $(where).clientWidth || 520;
  const colours = ["#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd"];
  const series = [{value: (u, v) => v === null ? "-" : clock(v)},
                  ...names.map((name, i) => ({label: name, stroke: colours[i % colours.length], width: 1.6}))];
  // the time axis reads as clock times (uPlot's own would print ":46" over "12/6/26 12:01pm")
  const axes = [{values: (u, splits) => splits.map(clock), space: 70}, {size: 56}];
  const plot = new uPlot({width, height, series, axes, scales: {x: {time: true}}},
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

// a conversation: each line with its time
function transcript(lines) {
  return lines.map((l) => el("div", {class: "line " + (l.by === "system" ? "system" : "")},
    el("span", {class: "time"}, clock(l.at)), l.by === "system" ? "" : el("span", {class: "who"}, l.from), l.text));
}

// the team view (team.py): the agents logged in on `mrd` in `states`
function agentsIn(team, mrd, states) {
  return (team.agents || []).filter((a) => a.mrds[mrd] && states.includes(a.mrds[mrd].state));
}

window.addEventListener("DOMContentLoaded", () => {
  api("/api/state").then((state) => {
    where = `topology ${state.name} · desk ${state.desk}`;
    $("#where").textContent = where;
    pages[document.body.dataset.page](state);
  }).catch((error) => { document.querySelector("main").prepend(el("p", {class: "error"}, String(error.message))); });
});
