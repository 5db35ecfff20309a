"""`mroute bench`: the figures of a running topology against raw ZeroMQ's (run.py), and of a
storm of wrong CURVE keys (curve.py)."""
