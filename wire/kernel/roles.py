"""The roles, each run as a process of its own by `python -m actors ROLE ...`.

ROLES maps a role's name to where its actor class lives, for actors/__main__.py to import;
the launcher knows roles by these names alone and never imports their modules.
"""

ROLES = {
    "comm": "actors.comm.server:Comm",
    "mre": "actors.mre.server:Mre",
    "chat": "actors.chat.sim:ChatServer",
    "gc": "actors.gc.server:GenericConnector",
}
# roles that bind the documented queues: at most one of each runs
SINGLETONS = ("comm", "mre", "gc")
