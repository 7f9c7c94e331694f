"""`fleet drill`: prove recovery on your own strategies. The user's strategy nodes run under the real daemon
against an emulator the drill started, are killed with SIGKILL at planned moments, the venue moves while they
are down, and every recovery is checked against the venue (see `invariants.py` for what must hold).

Where it sits: the `fleet` CLI (supervisor/) hands `fleet drill` over to `recovery.drill.cli` with a lazy
import, so `fleet status` and the daemon never load it. The drill needs nautilus (it reads each node's cache
with nautilus' own adapter, `cache_reader.py`), which only recovery/ may import; it uses supervisor/ (the
fleet schema, the daemon as a child process, the recovery reports on MQTT: `supervisor.emulated_fleet`, shared
with `make demo`) and emulator/ (the venue and its admin API). Nothing in the node imports this package.

Modules: `plan` (the seeded actions, pure), `fleet_copy` (refusals and the run's own copy of the fleet, pure),
`invariants` (the checks, pure), `report` (records, percentiles, table, JSON; pure), `values` and
`cache_reader` (the cache as plain values), `observe` (reads the venue, cache and state), `market` (moves the
market between kills), `runner` (the sequence), `cli` (`fleet drill`).
"""
