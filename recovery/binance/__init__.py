"""Binance USD-M futures: our execution client (reconciliation fixed) and the factory that builds it."""
