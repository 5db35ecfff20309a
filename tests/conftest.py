from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from .helpers import ChatClient, Running

# The suite runs under `pytest -n auto` on busy 2-core machines: time is never what a
# property test is about, so no deadline and no health check that fails on a slow draw
# (seen: `FailedHealthCheck: input generation is slow` with two CPU loops beside the suite).
# Tests that ask for more examples keep their count; everything else comes from here.
settings.register_profile("mroute", deadline=None, derandomize=False, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
settings.load_profile("mroute")

# Each test is of the kind its folder says (pyproject.toml's markers say what each holds):
# `pytest -m inprocess` (what `make quick` runs), `-m processes`, `-m browser`.
KINDS = ("inprocess", "processes", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        kind = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else None
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not any(item.get_closest_marker(kind) for kind in KINDS):
        pytest.fail(f"{item.path.name} is of no kind: it belongs in tests/inprocess, tests/processes or tests/browser",
                    pytrace=False)


@pytest.fixture
def start_topology(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Factory: start a topology in tmp_path; everything it started is killed afterwards,
    also when the test failed, and the test fails if any process outlived the stop."""
    started: list[Running] = []

    def start(spec: dict[str, Any], directory: Path | None = None, host: str | None = None) -> Running:
        directory = directory or tmp_path / f"topo{len(started)}"
        directory.mkdir(parents=True, exist_ok=True)
        running = Running(directory, spec, host)
        started.append(running)
        return running.start()
    yield start
    for running in started:
        running.stop()
    leftovers = [pid for running in started for pid in running.leftovers()]
    assert not leftovers, f"processes outlived the topology: {leftovers}"


@pytest.fixture
def chat_client() -> Iterator[Callable[..., ChatClient]]:
    clients: list[ChatClient] = []

    def make(endpoints: dict[str, str], destination: str = "desk") -> ChatClient:
        client = ChatClient(endpoints, destination)
        clients.append(client)
        return client
    yield make
    for client in clients:
        client.close()
