"""Running actor processes, one way for every owner of them: the supervisor's watchers
(launch/supervisor/) and `mroute actor`'s pod runner (launch/pod/). runner.py spawns, hears,
pings, reaps and stops one; states.py its states and the table they move by; record.py
what is known of it; channel.py the control channel; liveness.py whether it still answers."""
