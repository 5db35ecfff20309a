"""The simulated Chat Server's behaviours from a load scenario (wire/behaviour.py), without a
Comm: the queue and priority its customers ask for and their counts by queue, offers its
agents leave to time out, their breaks and shifts. Timers are fired by hand (the harness:
test_chat_sim.py)."""

from __future__ import annotations

import pytest

from wire.codec import WireError

from .test_chat_sim import desk  # noqa: F401  (the fixture)


def params(task: dict) -> dict:
    return dict(task["params"])


def test_customers_choose_a_queue_by_weight_with_its_priority_and_are_counted_by_it(desk):  # noqa: F811
    desk.go_live()
    answer = desk.server.set_load({"queues": {"sales": 1, "support": 0}, "priority": {"sales": 5}})
    assert answer["queues"] == {"sales": 1.0, "support": 0.0} and answer["priority"] == {"sales": 5}
    desk.queued("e1-1")
    desk.server.numbers += 1
    desk.server.customers.new_task(desk.server.numbers)
    task = desk.requests("Task")[-1]
    assert params(task) == {"channel": "web", "queue": "sales", "priority": 5}
    desk.offered("e1-1", "zed")
    desk.publish("TaskState", {"TaskId": "e1-1", "State": "ACTIVE", "AgentId": "zed"})
    desk.publish("TaskState", {"TaskId": "e1-1", "State": "CLOSED", "Code": "DONE", "AgentId": "zed"})
    desk.answer(task["MsgId"], "Error", {"Code": "OVERLOADED", "Type": "Task"})
    sales = desk.counts["queues"]["sales"]
    assert {k: sales[k] for k in ("created", "accepted", "closed", "refused", "abandoned")} == \
        {"created": 2, "accepted": 1, "closed": 1, "refused": 1, "abandoned": 0}
    assert sales["wait"]["count"] == 1 and "support" not in desk.counts["queues"]


def test_weights_share_the_customers_between_queues(desk):  # noqa: F811
    desk.go_live()
    desk.server.set_load({"queues": {"sales": 3, "support": 1}})
    for _ in range(400):
        desk.server.numbers += 1
        desk.server.customers.new_task(desk.server.numbers)
    tasks = [params(t) for t in desk.requests("Task")]
    chosen = [t["queue"] for t in tasks]
    assert not any("priority" in t for t in tasks)   # none given: the queue's order alone
    # 400 draws with p = 3/4: the mean 300, the standard deviation 8.7; 4 of them either side
    assert 265 <= chosen.count("sales") <= 335 and chosen.count("sales") + chosen.count("support") == 400


def test_without_queues_customers_name_none_and_nothing_is_counted_by_queue(desk):  # noqa: F811
    desk.go_live()
    desk.queued("e1-1")
    assert desk.counts["queues"] == {}


@pytest.mark.parametrize("body, field", [({"queues": {"sales": -1}}, "queues"), ({"ignore_offer": 2}, "ignore_offer"),
                                         ({"breaks": {"every": "exp:1"}}, "breaks")])
def test_a_bad_behaviour_is_refused_naming_it_and_nothing_changes(desk, body, field):  # noqa: F811
    desk.go_live()
    with pytest.raises(WireError) as caught:
        desk.server.set_load(body)
    assert caught.value.code == "BAD_FIELD" and caught.value.field == field
    assert desk.server.set_load({})["queues"] == {} and desk.server.behaviour.ignore_offer == 0
