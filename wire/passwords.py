"""Agents' passwords: never written down, never logged.

The topology file is the user's; what we write (the run directory's `topology.json`, the
journal) holds only `pbkdf2_sha256$<iterations>$<salt>$<hash>` strings, and a topology may
give those itself (`password_hash`). Comm and the Generic Connector check against them.
Agents that share a password share its hash (one salt per distinct password in a file):
hashing 100,000 generated agents is then one hash, not 100,000 (about 5 ms each). The
price: the hashes show which agents share a password.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections import OrderedDict
from typing import Any

ITERATIONS = 20_000  # about 5 ms: paid once per distinct password, at start and at first login
PREFIX = "pbkdf2_sha256"


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{PREFIX}${iterations}${salt.hex()}${digest.hex()}"


@functools.lru_cache(maxsize=None)
def shared_hash(password: str) -> str:
    """One hash per distinct password in this process: what topology.json holds."""
    return hash_password(password)


def is_hash(value: str) -> bool:
    parts = value.split("$")
    return len(parts) == 4 and parts[0] == PREFIX and parts[1].isdigit()


# Checked (hash, password) pairs, by a keyed digest of the password: a Chat Server that
# logs 100,000 agents in pays PBKDF2 once per distinct password, not once per login; and
# a wrong guess checked once is not checked again (Comm checks unknown ones off its loop,
# then answers from here: actors/comm/checks.py).
_KEY = os.urandom(32)
_verified: dict[str, set[bytes]] = {}
_refused: OrderedDict[tuple[str, bytes], None] = OrderedDict()
REFUSED_KEPT = 10_000


def _seen(password: str) -> bytes:
    return hmac.new(_KEY, password.encode(), "sha256").digest()


def known(password: Any, stored: str) -> bool | None:
    """Whether `password` matches `stored`, when that was checked already; None when not."""
    if not isinstance(password, str) or not is_hash(stored):
        return False
    seen = _seen(password)
    if seen in _verified.get(stored, ()):
        return True
    if (stored, seen) in _refused:
        return False
    return None


def check(password: str, stored: str) -> bool:
    """PBKDF2 (about 5 ms, the GIL released meanwhile), its verdict remembered for `known`.
    Safe from another thread: each verdict is one dict or set insertion."""
    _prefix, iterations, salt, digest = stored.split("$")
    ok = hmac.compare_digest(hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt),
                                                 int(iterations)).hex(), digest)
    seen = _seen(password)
    if ok:
        _verified.setdefault(stored, set()).add(seen)
    else:
        _refused[(stored, seen)] = None
        while len(_refused) > REFUSED_KEPT:
            _refused.popitem(last=False)
    return ok


def verify(password: str, stored: str) -> bool:
    verdict = known(password, stored)
    return verdict if verdict is not None else check(password, stored)


def hashed_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A topology's directory entry (an agent or a generate block) with its password
    replaced by the hash: what a file we write holds."""
    if "generate" in entry:
        return {"generate": hashed_entry(entry["generate"])}
    if "password" not in entry:
        return dict(entry)
    out = {k: v for k, v in entry.items() if k != "password"}
    out["password_hash"] = shared_hash(str(entry["password"]))
    return out
