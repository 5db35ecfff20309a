"""`mroute export`: the topology file, written out for an orchestrator to run (Kubernetes
manifests, a docker compose project, systemd units), all from one plan (plan.py), so that
the topology file stays the one source of truth."""
