"""`mroute actor`: one actor instance in the foreground, for an orchestrator to run
(Kubernetes, docker compose, systemd). The orchestrator restarts, places and scales; this
runs one actor process as the supervisor's watcher would (credentials on its stdin, its
control channel, pings), exits with it, and says on a health port how it is."""
