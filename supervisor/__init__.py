"""nautilus-fleet supervisor: the fleet daemon and the `fleet` CLI (no nautilus_trader import at start)."""
