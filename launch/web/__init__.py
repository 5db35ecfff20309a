"""`mroute web`: a web console that joins a running topology: watch and drive its actors,
see routing live, run a load, and route a real chat by hand between a customer page and an
agent page (server.py, desk.py; the pages and their script in static/)."""
