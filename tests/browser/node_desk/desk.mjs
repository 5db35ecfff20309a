// A desk (a Chat Server holding one agent) written from docs/asyncapi.yaml and
// /work/shared/protocol.md section 1 only, in another language than the project: it proves
// the document is enough to talk to Comm. tests/browser/test_contract.py runs it.
//
//   node desk.mjs --general ipc://.../General --events ipc://.../ChatEvents \
//        --destination desk-node --agent alice --password pw-alice [--mrd chat] [--deps DIR]
//
// (or the environment: DESK_GENERAL, DESK_EVENTS, DESK_DESTINATION, DESK_AGENT,
// DESK_PASSWORD, DESK_MRD, DESK_DEPS; DESK_DEPS / --deps: the folder whose node_modules
// holds zeromq, when it is not installed beside this file).
//
// What it does, as the document's info.description says a client does:
//   1. subscribes to `<destination>\0` and `mroute.comm\0` (NUL: no batches, so every
//      ZeroMQ message is three frames [topic, type, body], which it asserts);
//   2. probes with GetAgentState about its own agent, every 50 ms, until an answer arrives
//      on its topic (its subscription is then live);
//   3. Connect, Login, AgentState READY: each with MsgId and ReplyTo, sent again with the
//      same MsgId every second until the message carrying that MsgId comes back;
//      prints "READY" on stdout;
//   4. waits for TaskAgentSelected naming its agent, accepts it (TaskState ACTIVE) and
//      closes it (TaskState CLOSED, Code DONE);
//   all along it checks that the messages on its topic are numbered Seq = previous + 1
//   within one Stream (a gap fails the run).
// The last stdout line is one JSON object: {"ok": true, "task": ..., "seqs": [...], ...}
// (exit 0), or {"ok": false, "reason": ...} (exit 1). It gives up after 30 s.

import { createRequire } from 'node:module';
import path from 'node:path';

const HARD_TIMEOUT_MS = 30_000;
const PROBE_EVERY_MS = 50;
const RESEND_EVERY_MS = 1_000;

function option(name, envName, fallback) {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return argv[i + 1];
    if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
  }
  return process.env[envName] ?? fallback;
}

const cfg = {
  general: option('general', 'DESK_GENERAL'),
  events: option('events', 'DESK_EVENTS'),
  destination: option('destination', 'DESK_DESTINATION'),
  agent: option('agent', 'DESK_AGENT'),
  password: option('password', 'DESK_PASSWORD'),
  mrd: option('mrd', 'DESK_MRD', 'chat'),
  deps: option('deps', 'DESK_DEPS'),
};

// What arrived on our topic, in order, and what the numbering looked like.
const inbox = []; // {type, body, used}
const seqs = [];
const streams = [];
let lastSeq = null;
let beats = 0;
let resent = 0;
let probes = 0;
let taskId = null;
let probeAnswer = null;

function summary() {
  return {
    task: taskId, agent: cfg.agent, destination: cfg.destination, seqs, streams,
    messages: inbox.length, beats, probes, probeAnswer, resent,
    types: inbox.map((m) => m.type),
  };
}

let phase = 'starting';
let finished = false;
const sockets = [];

function finish(code, result) {
  if (finished) return;
  finished = true;
  for (const sock of sockets) {
    try { sock.close(); } catch { /* closing is best effort */ }
  }
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code));
}

function fail(reason) {
  if (finished) return;
  process.stderr.write(`node desk: ${reason}\n`);
  finish(1, { ok: false, reason, phase, ...summary() });
}

for (const [key, value] of Object.entries(cfg)) {
  if (key !== 'deps' && !value) {
    fail(`missing --${key}`);
  }
}

const hardTimeout = setTimeout(() => fail(`timed out after ${HARD_TIMEOUT_MS / 1000} s while ${phase}`),
  HARD_TIMEOUT_MS);

const require = createRequire(cfg.deps ? path.resolve(cfg.deps, 'package.json') : import.meta.url);
let zmq;
try {
  zmq = require('zeromq');
} catch (err) {
  fail(`cannot load zeromq: ${err.message}`);
}

const BEAT_TOPIC = 'mroute.comm';
const ownTopic = Buffer.from(`${cfg.destination}\0`);
const beatTopic = Buffer.from(`${BEAT_TOPIC}\0`);

// Waiters for a message on our topic: the first unused message that matches is theirs.
const waiters = new Set();

function waitFor(predicate, timeoutMs) {
  return new Promise((resolve) => {
    for (const m of inbox) {
      if (!m.used && predicate(m)) {
        m.used = true;
        resolve(m);
        return;
      }
    }
    const waiter = { predicate, resolve, timer: null };
    if (timeoutMs !== undefined) {
      waiter.timer = setTimeout(() => { waiters.delete(waiter); resolve(null); }, timeoutMs);
    }
    waiters.add(waiter);
  });
}

function deliver(m) {
  inbox.push(m);
  for (const waiter of waiters) {
    if (waiter.predicate(m)) {
      waiters.delete(waiter);
      clearTimeout(waiter.timer);
      m.used = true;
      waiter.resolve(m);
      return;
    }
  }
}

function checkNumbering(type, body) {
  const { Seq: seq, Stream: stream } = body;
  if (!Number.isInteger(seq) || seq < 1) throw new Error(`${type} on our topic without a Seq >= 1: ${JSON.stringify(body)}`);
  if (typeof stream !== 'string' || !stream) throw new Error(`${type} on our topic without a Stream: ${JSON.stringify(body)}`);
  if (streams.length === 0 || streams[streams.length - 1] !== stream) {
    // The first message, or a new numbering (another Comm process): it starts afresh.
    streams.push(stream);
  } else if (seq !== lastSeq + 1) {
    throw new Error(`gap in Seq on stream ${stream}: ${lastSeq} then ${seq} (${type})`);
  }
  lastSeq = seq;
  seqs.push(seq);
}

async function receive(sub) {
  for await (const frames of sub) {
    if (frames.length !== 3) {
      throw new Error(`a ZeroMQ message of ${frames.length} frames, not 3 [topic, type, body]: `
        + frames.map((f) => JSON.stringify(f.toString('latin1').slice(0, 40))).join(' '));
    }
    const [topic, typeFrame, bodyFrame] = frames;
    const type = typeFrame.toString('ascii');
    let body;
    try {
      body = JSON.parse(bodyFrame.toString('utf8'));
    } catch (err) {
      throw new Error(`${type}: body is not JSON: ${err.message}`);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new Error(`${type}: body is not a JSON object`);
    }
    if (topic.equals(beatTopic)) {
      beats++;
      continue;
    }
    if (!topic.equals(ownTopic)) {
      throw new Error(`a message on a topic we did not subscribe to: ${JSON.stringify(topic.toString('latin1'))}`);
    }
    checkNumbering(type, body);
    deliver({ type, body, used: false });
  }
}

// One send at a time on the PUSH socket (zeromq.js allows one send in progress).
let sending = Promise.resolve();
function send(type, body) {
  sending = sending.then(() => push.send([type, JSON.stringify(body)]));
  return sending;
}

let counter = 0;
function newMsgId(type) {
  counter += 1;
  return `${cfg.destination}-${process.pid}-${type}-${counter}`;
}

function mrdOf(body) {
  return body.Mrd ?? body.MRD;
}

// A request: with MsgId and ReplyTo, sent again (same MsgId) every second until the
// message carrying its MsgId arrives; that answer is of `answerType`, or an Error.
async function request(type, answerType, fields) {
  const msgId = newMsgId(type);
  const body = { ...fields, MsgId: msgId, ReplyTo: cfg.destination };
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) resent++;
    await send(type, body);
    const answer = await waitFor((m) => m.body.MsgId === msgId, RESEND_EVERY_MS);
    if (answer === null) continue;
    if (answer.type === 'Error') {
      throw new Error(`${type} refused: ${answer.body.Code} ${answer.body.Reason}`
        + (answer.body.Field ? ` (field ${answer.body.Field})` : ''));
    }
    if (answer.type !== answerType) {
      throw new Error(`${type} answered with ${answer.type}, expected ${answerType}: ${JSON.stringify(answer.body)}`);
    }
    return answer.body;
  }
}

function expectField(what, body, name, value) {
  if (body[name] !== value) {
    throw new Error(`${what}: ${name} is ${JSON.stringify(body[name])}, expected ${JSON.stringify(value)}: ${JSON.stringify(body)}`);
  }
}

// Probe: GetAgentState about our agent, a new one every 50 ms, until one is answered.
async function probe() {
  const ids = new Set();
  const answered = waitFor((m) => ids.has(m.body.MsgId));
  let done = false;
  const fire = () => {
    if (done) return;
    const msgId = newMsgId('probe');
    ids.add(msgId);
    probes++;
    send('GetAgentState', { AgentId: cfg.agent, Mrd: cfg.mrd, MsgId: msgId, ReplyTo: cfg.destination })
      .catch((err) => fail(`sending the probe: ${err.message}`));
  };
  fire();
  const timer = setInterval(fire, PROBE_EVERY_MS);
  const answer = await answered;
  done = true;
  clearInterval(timer);
  // Any answer proves the subscription live (an Error too: it came on our topic); what it
  // says about the agent matters no more than that.
  probeAnswer = answer.type;
}

let push;
async function main() {
  push = new zmq.Push({ linger: 0 });
  const sub = new zmq.Subscriber({ linger: 0 });
  sockets.push(push, sub);
  sub.connect(cfg.events);
  sub.subscribe(ownTopic, beatTopic);
  push.connect(cfg.general);
  receive(sub).catch((err) => fail(err.message));

  phase = 'probing';
  await probe();

  phase = 'connecting';
  await request('Connect', 'Ack', {
    AgentId: cfg.agent, Password: cfg.password, Extension: '', Destination: cfg.destination,
  });

  phase = 'logging in';
  const login = await request('Login', 'AgentState', { AgentId: cfg.agent, Password: cfg.password, Mrd: cfg.mrd });
  expectField('Login answer', login, 'AgentId', cfg.agent);
  expectField('Login answer', login, 'State', 'NOT_READY');

  phase = 'going READY';
  const ready = await request('AgentState', 'AgentState', { AgentId: cfg.agent, State: 'READY', Mrd: cfg.mrd });
  expectField('AgentState answer', ready, 'State', 'READY');
  if (mrdOf(ready) !== cfg.mrd) throw new Error(`AgentState answer for MRD ${mrdOf(ready)}`);
  process.stdout.write('READY\n');

  phase = 'waiting for TaskAgentSelected';
  const selected = await waitFor((m) => m.type === 'TaskAgentSelected' && m.body.AgentId === cfg.agent);
  taskId = selected.body.TaskId;
  if (typeof taskId !== 'string' || !taskId) throw new Error(`TaskAgentSelected without a TaskId: ${JSON.stringify(selected.body)}`);
  expectField('TaskAgentSelected', selected.body, 'Status', 'RESERVED');

  phase = 'accepting the task';
  const active = await request('TaskState', 'TaskState', { AgentId: cfg.agent, TaskId: taskId, State: 'ACTIVE' });
  expectField('TaskState ACTIVE answer', active, 'TaskId', taskId);
  expectField('TaskState ACTIVE answer', active, 'State', 'ACTIVE');

  phase = 'closing the task';
  const closed = await request('TaskState', 'TaskState', {
    AgentId: cfg.agent, TaskId: taskId, State: 'CLOSED', Code: 'DONE',
  });
  expectField('TaskState CLOSED answer', closed, 'TaskId', taskId);
  expectField('TaskState CLOSED answer', closed, 'State', 'CLOSED');
  expectField('TaskState CLOSED answer', closed, 'Code', 'DONE');

  phase = 'done';
  clearTimeout(hardTimeout);
  finish(0, { ok: true, ...summary() });
}

if (!finished) {
  main().catch((err) => fail(err.message));
}
