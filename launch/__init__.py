"""Topology loading, the supervisor and the `mroute` CLI. Starts actors by role name."""
