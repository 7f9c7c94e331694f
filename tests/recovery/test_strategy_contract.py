"""The strategy side's view of the hub contract matches the node's implementation (recovery.hub/venue)."""

from __future__ import annotations

from decimal import Decimal

from recovery import hub as node_hub
from recovery import hub_api
from recovery.protective import OpenOrder
from recovery.venue import VenueOpenOrder, VenueReconciliation


def as_strategy_hub(hub: node_hub.RecoveryHub) -> hub_api.RecoveryHub:
    """mypy proves the node's hub has every member RecoverableStrategy uses."""
    return hub


def test_venue_open_orders_become_plain_open_orders() -> None:
    rec = VenueReconciliation(
        venue="emu",
        positions=[],
        open_orders=[
            VenueOpenOrder(
                client_order_id="SL-BTCUSDT-PERP-abcdef-g1",
                venue_order_id="1001",
                instrument_id="BTCUSDT-PERP.BINANCE",
                side="SELL",
                order_type="STOP_MARKET",
                quantity=Decimal("0.010"),
                trigger_price=Decimal("55100.00"),
                reduce_only=True,
                is_algo=True,
            ),
            VenueOpenOrder(
                client_order_id="x",
                venue_order_id="1002",
                instrument_id="BTCUSDT-PERP.BINANCE",
                side="BUY",
                order_type="MARKET_IF_TOUCHED",
                quantity=Decimal(0),
                close_position=True,
            ),
        ],
        discrepancies=[],
        balances_before={},
        balances_after={},
    )
    assert hub_api.venue_open_orders(rec) == [
        OpenOrder(
            client_order_id="SL-BTCUSDT-PERP-abcdef-g1",
            instrument_id="BTCUSDT-PERP.BINANCE",
            side="SELL",
            order_type="STOP_MARKET",
            quantity=Decimal("0.010"),
            trigger_price=Decimal("55100.00"),
            reduce_only=True,
            venue_order_id="1001",
        ),
        OpenOrder(
            client_order_id="x",
            instrument_id="BTCUSDT-PERP.BINANCE",
            side="BUY",
            order_type="MARKET_IF_TOUCHED",
            quantity=Decimal(0),
            trigger_price=None,
            reduce_only=False,
            venue_order_id="1002",
            close_position=True,
        ),
    ]
