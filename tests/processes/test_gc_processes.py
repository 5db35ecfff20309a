"""The Generic Connector through real processes: a client that knows only protocol.md 2."""

from __future__ import annotations

import pytest

from launch import client as control_client

from ..helpers import GcClient, base_topology


def voice_spec(**gc: object) -> dict:
    spec = base_topology("voice")
    spec["agents"] = [
        {"id": "alice", "password": "pa", "name": "Alice Smith", "extension": "1001", "team": "sales"},
        {"id": "bob", "password": "pb", "name": "Bob Jones", "extension": "1002", "team": "sales"},
        {"id": "sue", "password": "ps", "name": "Sue Boss", "extension": "1009", "team": "sales",
         "supervisor": True},
        {"id": "dan", "password": "pd", "name": "Dan Chat"},
    ]
    spec["actors"]["gc"] = {"role": "gc", "queues": {"sales": {"rate": 0}}, "answer_delay": 0.2, **gc}
    return spec


@pytest.fixture
def voice(start_topology, chat_client):
    running = start_topology(voice_spec())
    clients = []

    def desk(name: str) -> GcClient:
        client = GcClient(running.endpoints(), f"gc-{name}")
        client.handshake()
        clients.append(client)
        return client
    yield running, desk
    for client in clients:
        client.close()


def place_call(running) -> str:
    result = running.cli("call", "sales", "--ani", "5551234")
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[1]


def chat_agent_ready_on_voice(chat, desk):
    """alice logs in through a Chat Server (so Comm logs her into voice), then goes READY on
    voice from her GC client; returns that client."""
    chat.login("alice", "pa")
    chat.expect("AgentState", AgentId="alice", Mrd="voice", State="NOT_READY")
    alice = desk("alice")
    alice.cmd("Connect", "alice", alice.destination, "pa")
    alice.cmd("MakeReady", "alice")
    chat.expect("AgentState", AgentId="alice", Mrd="voice", State="READY")
    return alice


def test_inbound_call_hold_retrieve_consult_and_transfer(voice):
    running, desk = voice
    alice, bob = desk("alice"), desk("bob")
    alice.login("alice", "pa", "1001")
    bob.login("bob", "pb", "1002")
    alice.cmd("makeready", "alice")  # any case
    alice.expect("State", agentId="alice", state="READY")
    call = place_call(running)
    ring = alice.expect("Dialog", dialog_id=call)
    assert ring["dialog"]["callType"] == "ACD_IN" and ring["dialog"]["fromAddress"] == "5551234"
    alice.expect("State", agentId="alice", state="RESERVED")
    alice.cmd("AnswerCall", "alice", call)
    alice.expect("State", agentId="alice", state="TALKING")
    alice.cmd("HoldCall", "alice", call)
    alice.expect("State", agentId="alice", state="HOLD")
    alice.cmd("RetrieveCall", "alice", call)
    alice.expect("State", agentId="alice", state="TALKING")
    alice.cmd("ConsultCall", "alice", "1002", call)
    consult = bob.expect("Dialog", event="ConsultCall")["dialog"]
    assert consult["associatedDialogId"] == call
    bob.cmd("AnswerCall", "bob", consult["id"])
    bob.expect("State", agentId="bob", state="TALKING")
    alice.cmd("TransferCall", "alice", "1002", call)
    moved = bob.expect("Dialog", event="TransferCall", dialog_id=call)["dialog"]
    assert {p["mediaAddress"] for p in moved["participants"] if p["state"] == "ACTIVE"} == {"5551234", "1002"}
    alice.expect("State", agentId="alice", state="READY")
    alice.cmd("HoldCall", "alice", call)
    assert alice.expect("Error", command="HoldCall")["code"] == "NOT_FOUND"


def test_conference_blind_transfer_and_supervisor(voice):
    running, desk = voice
    alice, bob, sue = desk("alice"), desk("bob"), desk("sue")
    alice.login("alice", "pa", "1001")
    bob.login("bob", "pb", "1002")
    sue.login("sue", "ps", "1009")
    alice.cmd("MakeReady", "alice")
    alice.expect("State", agentId="alice", state="READY")
    call = place_call(running)
    alice.cmd("AnswerCall", "alice", call)
    alice.expect("State", agentId="alice", state="TALKING")
    bob.cmd("SilentMonitor", "bob", "1001")
    assert bob.expect("Error", command="SilentMonitor")["code"] == "AUTHORIZATION_FAILURE"
    sue.cmd("SilentMonitor", "sue", "1001")
    assert sue.expect("Dialog", event="Monitor")["dialog"]["id"] == call
    sue.cmd("BargeCall", "sue", "1001", call)
    alice.expect("Dialog", event="Barge")
    sue.cmd("DropParticipant", "sue", call, "1009")
    sue.expect("State", agentId="sue", state="NOT_READY")  # off the call (clients' commands are not ordered)
    alice.cmd("ConsultCall", "alice", "1002", call)
    consult = bob.expect("Dialog", event="ConsultCall")["dialog"]["id"]
    bob.cmd("AnswerCall", "bob", consult)
    bob.expect("State", agentId="bob", state="TALKING")
    alice.cmd("Conferencecall", "alice", "1002", call)
    conf = alice.expect("Dialog", event="ConferenceCall")["dialog"]
    assert conf["callType"] == "CONFERENCE"
    alice.cmd("ReleaseCall", "alice", call)
    alice.expect("State", agentId="alice", state="READY")  # two clients' commands are not ordered: wait
    bob.cmd("BlindTransfer", "bob", "1001", call)
    alice.expect("Dialog", event="TransferCall", dialog_id=call)
    alice.expect("State", agentId="alice", state="RESERVED")


def test_an_agent_on_a_call_gets_no_chat_and_gets_one_after(voice, chat_client):
    running, desk = voice
    chat = chat_client(running.endpoints(), "web")
    chat.handshake()
    chat.login("dan", "pd")
    alice = chat_agent_ready_on_voice(chat, desk)  # an extension in the directory: Comm logs alice into voice
    call = place_call(running)
    chat.expect("AgentState", AgentId="alice", Mrd="chat", State="INTERRUPTED")
    first = chat.send("Task", {"Mrd": "chat", "ClientUniqueId": "c1"})
    task = chat.expect("TaskState", MsgId=first)["TaskId"]
    assert chat.expect("TaskAgentSelected", TaskId=task)["AgentId"] == "dan"  # alice is on the phone
    chat.send("TaskState", {"AgentId": "dan", "TaskId": task, "State": "ACTIVE"})
    chat.send("AgentState", {"AgentId": "dan", "State": "NOT_READY", "Mrd": "chat"})
    chat.expect("AgentState", AgentId="dan", State="PENDING_NOT_READY")  # dan takes nothing more
    second = chat.send("Task", {"Mrd": "chat", "ClientUniqueId": "c2"})
    waiting = chat.expect("TaskState", MsgId=second)["TaskId"]
    alice.cmd("AnswerCall", "alice", call)
    chat.expect("AgentState", AgentId="alice", Mrd="voice", State="BUSY")  # talking
    alice.cmd("ReleaseCall", "alice", call)
    chat.expect("AgentState", AgentId="alice", Mrd="chat", State="READY")
    assert chat.expect("TaskAgentSelected", TaskId=waiting)["AgentId"] == "alice"
    # every event the GC sent Comm (AgentInfo, Dialog, ...) was understood, none refused
    assert running.status() and control_client.ask(running.topology, "stats")["actors"]["comm.1"]["counters"][
        "refused"] == 0


def test_gc_cli_sends_one_command(voice):
    running, _ = voice
    result = running.cli("gc", "bob", "Login", "pb", "1002")
    assert result.returncode == 0, result.stderr
    assert '"state":"NOT_READY"' in result.stdout and '"type":"AgentInfo"' in result.stdout
    commas = running.cli("gc", "bob", "MakeNotReadyWithReason", "1,")  # commas separate as spaces do
    assert '"reasonCode":"1"' in commas.stdout, commas.stdout
    wrong = running.cli("gc", "bob", "Teleport")
    assert '"code":"BAD_COMMAND"' in wrong.stdout
    assert running.cli("call", "nowhere").returncode != 0


def test_system_status_follows_the_voice_side_and_heartbeats_answer(voice):
    running, desk = voice
    client = desk("watcher")  # its Hello was answered IN_SERVICE
    assert running.cli("voice-side", "down").returncode == 0
    assert client.expect("System")["status"] == "OUT_OF_SERVICE"
    client.cmd("Beat", client.destination)
    assert client.expect("System")["status"] == "OUT_OF_SERVICE"
    client.cmd("Connect", "alice", client.destination, "pa")
    client.cmd("GetState", "alice")
    assert client.expect("Error", command="GetState")["code"] == "GENERAL_ERROR"
    assert running.cli("voice-side", "up").returncode == 0
    assert client.expect("System")["status"] == "IN_SERVICE"


def test_outbound_preview_through_the_cli_and_the_shell(voice):
    running, desk = voice
    alice = desk("alice")
    alice.login("alice", "pa", "1001")
    alice.cmd("MakeReady", "alice")
    alice.expect("State", agentId="alice", state="READY")
    offered = running.cli("preview", "alice", "5556666")
    assert offered.returncode == 0, offered.stderr
    dialog = alice.expect("Dialog")["dialog"]
    assert dialog["callType"] == "OUTBOUND_PREVIEW"
    alice.expect("State", agentId="alice", state="RESERVED_OUTBOUND_PREVIEW")
    alice.cmd("AcceptOutboundPreview", "alice", dialog["id"], "ACCEPT")
    alice.expect("State", agentId="alice", state="TALKING", timeout=5)  # the number answers
    shell = running.cli_input("gc", "--shell", "bob", stdin="Login pb,1002\nGetState\n")
    assert shell.returncode == 0, shell.stderr
    assert '"state":"NOT_READY"' in shell.stdout


def test_a_restarted_gc_gets_the_voice_agents_logged_in_again(voice, chat_client):
    import os
    import signal

    from ..helpers import wait_until
    running, desk = voice
    chat = chat_client(running.endpoints(), "web2")
    chat.handshake()
    chat_agent_ready_on_voice(chat, desk)
    gc = next(a for a in running.status()["actors"] if a["name"] == "gc.1")
    os.kill(gc["pid"], signal.SIGKILL)
    wait_until(lambda: (a := next(x for x in running.status()["actors"] if x["name"] == "gc.1"))["state"]
               == "RUNNING" and a["restarts"] >= 1, timeout=15, what="gc.1 RUNNING again")
    running.remember_pids()
    # Comm noticed the new GC (its System epoch) and logged alice in again: NOT_READY on voice
    chat.expect("AgentState", AgentId="alice", Mrd="voice", State="NOT_READY", timeout=10)


def gc_stats(running) -> dict:
    return control_client.ask(running.topology, "stats")["actors"]["gc.1"]


def test_the_gc_shell_is_live_beats_and_prints_a_call_without_a_key_pressed(start_topology):
    from ..helpers import wait_until
    from .terminal import Terminal
    running = start_topology(voice_spec(client_timeout=2.0))
    silent = GcClient(running.endpoints(), "gc-silent")   # says Hello once, then nothing
    try:
        with Terminal(running.directory, "gc", "--shell", "alice") as term:
            term.expect("connected as alice")
            term.expect("alice> ")
            term.line("Login pa 1001")          # spaces separate parameters, as commas do
            term.expect('"state":"NOT_READY"')
            term.line("help")                   # local words are not sent to the GC
            term.expect("GC commands:")
            term.line("clear")
            term.line("MakeReady")
            term.expect('"state":"READY"')
            silent.handshake()
            # the GC forgets a client that said nothing for its clientTimeout: once the silent
            # one is gone, the shell (older than it) has outlived the timeout on its beats alone
            wait_until(lambda: gc_stats(running)["clients_forgotten"] >= 1, timeout=10, what="a silent client forgotten")
            assert gc_stats(running)["clients_forgotten"] == 1   # the shell was not
            place_call(running)
            term.expect('"event":"InboundCall"')   # printed with no key pressed
            assert "BAD_COMMAND" not in term.seen.decode(errors="replace")
            term.line("quit")
            assert term.wait_exit() == 0
    finally:
        silent.close()


def test_the_gc_shell_connects_again_to_a_restarted_gc(start_topology):
    import os
    import signal

    from ..helpers import wait_until
    from .terminal import Terminal
    running = start_topology(voice_spec(client_timeout=2.0))
    with Terminal(running.directory, "gc", "--shell", "bob") as term:
        term.expect("bob> ")
        term.line("Login pb,1002")
        term.expect('"state":"NOT_READY"')
        os.kill(next(a["pid"] for a in running.status()["actors"] if a["name"] == "gc.1"), signal.SIGKILL)
        term.expect("the GC restarted", timeout=20)
        wait_until(lambda: next(a for a in running.status()["actors"] if a["name"] == "gc.1")["state"] == "RUNNING",
                   timeout=15, what="gc.1 RUNNING again")
        running.remember_pids()
        term.line("Login pb 1002")           # the new GC knows the shell: its answers come back
        term.expect('"state":"NOT_READY"')


def test_gc_against_a_topology_without_a_gc_says_so(start_topology):
    running = start_topology(base_topology("nogc"))
    result = running.cli("gc", "alice", "GetState", timeout=10)
    assert result.returncode == 1 and "has no gc actor" in result.stderr, result.stderr


def test_an_unknown_or_malformed_command_naming_an_agent_is_answered_to_its_clients(voice):
    """Found by review: `NoSuchCommand#alice` was answered only on the public
    mroute.errors topic, never to alice's client."""
    _, desk = voice
    alice = desk("alice")
    alice.cmd("Connect", "alice", alice.destination, "pa")
    alice.cmd("NoSuchCommand", "alice")
    assert alice.expect("Error", code="BAD_COMMAND")["command"] == "NoSuchCommand"
    alice.cmd("Login", "alice", "pa", "1001", "extra", "params")
    assert "takes <password>,<extension>" in alice.expect("Error", code="BAD_COMMAND", command="Login")["message"]
