"""The kernel both floors stand on: what an actor process and the launcher that starts it
must agree on, and nothing either owns alone.

- loop.py: the event loop every process of ours runs (one thread, a poller, timers, signals);
- roles.py: the roles, by name, and where each one's actor lives;
- rundir.py: the run directory's layout, every file name spelt once;
- settings.py: each role's settings as a typed dataclass with its defaults, defined once;
  topocheck validates a topology file into them and actors read them.

actors/ and launch/ import this; it imports neither (tests/inprocess/test_layout.py).
"""
