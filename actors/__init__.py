"""The roles, each run as its own process by `python -m actors ROLE ...`.

ROLES maps a role name to where its actor class lives; the launcher knows roles only by
these names and never imports their modules.
"""

ROLES = {
    "comm": "actors.comm.server:Comm",
    "mre": "actors.mre.server:Mre",
    "chat": "actors.chat.sim:ChatServer",
    "gc": "actors.gc.server:GenericConnector",
}
