"""The actors: each role a process of its own, started by `python -m actors ROLE ...`
(roles by name: wire/kernel/roles.py). The launcher reaches this package only through that
command line (and `python -m actors bench|journal ...` for its tools), never by import."""
