"""A scenario hook (wire/hook.py): VIP customers, as a YAML scenario cannot say them.

One customer in ten is a VIP: it asks for the `support` queue at priority 9 and waits for as
long as it takes; an agent offered its chat takes it at once and keeps it twice as long (when
the agent is on the VIP's own Chat Server: a server knows only its own customers). The hook
counts what happened to VIPs; `mroute load` reports the counts under `hook`. The topology
needs a `support` queue on the Chat Servers' MRD.

    hook: hook.py:Vip        # in a scenario file beside this one
"""

from wire.hook import Chat, Closed, Customer, Hook, Message, Offer

VIP_SHARE = 0.1


class Vip(Hook):
    def on_customer(self, customer: Customer) -> None:
        if self.sim.rng.random() < VIP_SHARE:
            customer.data["vip"] = True
            customer.queue, customer.priority, customer.patience = "support", 9, None
            customer.params.append(["tier", "vip"])
            self.sim.count("vip_arrived")

    def on_offer(self, offer: Offer) -> None:
        if offer.customer is not None and offer.customer.data.get("vip"):
            offer.think = 0.0          # never left to time out, never kept waiting

    def on_accept(self, chat: Chat) -> None:
        if chat.customer is not None and chat.customer.data.get("vip"):
            chat.handle *= 2           # VIPs talk longer

    def on_message(self, message: Message) -> None:
        if message.type == "TaskState" and message.body.get("Code") == "RONA":
            self.sim.count("rona_heard")

    def on_close(self, closed: Closed) -> None:
        if closed.customer.data.get("vip"):
            self.sim.count(f"vip_{closed.outcome}")
