"""A desk on the one client: logs an agent in, accepts the first chat offered, closes it."""
import sys

from launch.topology import load
from wire.client import Client

topology = load(sys.argv[1] if len(sys.argv) > 1 else "topology.yaml")
agent, password = sys.argv[2], sys.argv[3]
with Client(topology.data_socket, f"desk-{agent}", probe=(agent, "chat")) as desk:
    desk.request("Connect", {"AgentId": agent, "Password": password, "Destination": desk.destination})
    desk.request("Login", {"AgentId": agent, "Password": password, "Mrd": "chat"})
    desk.request("AgentState", {"AgentId": agent, "State": "READY", "Mrd": "chat"})
    print(f"{agent} is READY", flush=True)
    offer = desk.expect("TaskAgentSelected", AgentId=agent, timeout=60)
    desk.request("TaskState", {"TaskId": offer.TaskId, "AgentId": agent, "State": "ACTIVE"})
    closed = desk.request("TaskState", {"TaskId": offer.TaskId, "AgentId": agent, "State": "CLOSED",
                                        "Code": "DONE"})
    print(f"{agent} took and closed {closed.TaskId}; last Seq {closed.Seq}")
    desk.request("AgentState", {"AgentId": agent, "State": "LOGOUT", "Mrd": "chat"})
