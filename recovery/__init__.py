"""nautilus-fleet recovery: the in-node library that brings a restarted TradingNode back exact."""
