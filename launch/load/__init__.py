"""The load tool (`mroute load`, `mroute chaos`, the web console's Load page): its plan, its
fleets of simulated Chat Servers, the run that accounts for every task, and its reports."""
