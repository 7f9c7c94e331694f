"""The venue audit: the supervisor's own check, independent of the node, that the venue holds exactly the
positions and open protective orders a strategy node holds.

- `holdings`: what the node holds (its readable positions keys and nautilus' open orders, both in Redis).
- `venue_view`: what the venue holds, through ccxt (imported lazily, run in a worker thread, bounded).
- `compare`: the exact difference of the two, and what changed at the venue while a node was down (pure).
- `budget`: the audit's request weight, taken from the fleet's shared budget of the node's rate group.
- `scheduler`: when audits run (after READY, then every `audit.interval`, jittered) and where results go.
"""
