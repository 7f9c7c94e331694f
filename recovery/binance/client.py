"""Our Binance USD-M futures execution client: nautilus' own, with reconciliation done right.

Fixes (nautilus_trader 1.231; VENUE-FACTS.md, last section):
1. cached symbols "BTCUSDT-PERP" are mapped to the venue's "BTCUSDT", so each symbol is fetched once and no
   fill is duplicated (the stock client fabricates a close and re-open on a plain restart);
2. a stop that triggered while the node was down is re-keyed to the cached order (see reports.py);
3. per-symbol history is fetched concurrently, paced by an injectable per-account limiter;
4. no lookback ever hides an open order or stop;
5. a venue error fails reconciliation (the stock client returns "no reports", read as "flat"), here and in
   the report methods the engine's continuous checks and listen-key re-sync use.
Everything else (order entry, the user stream, account state) is the stock client's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, Protocol

from nautilus_trader.adapters.binance.futures.execution import BinanceFuturesExecutionClient
from nautilus_trader.core.datetime import secs_to_millis
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.reports import ExecutionMassStatus, PositionStatusReport
from nautilus_trader.model.enums import PositionSide
from nautilus_trader.model.objects import Quantity

from recovery.binance.fetch import Fetcher, VenueFetchError, VenueRows, fetch_for_reconciliation, first_error
from recovery.binance.reports import BuiltReports, ReportContext, build_reports, latest, venue_symbol
from recovery.ratelimit import RequestLimiter
from recovery.venue import VenueFill, VenuePosition, VenueSnapshot

log = logging.getLogger(__name__)

# Re-sync after a user-stream reconnect: attempts and the first delay (doubling) before escalating.
RESYNC_ATTEMPTS = 3
RESYNC_FIRST_DELAY_S = 1.0


class ReconciliationObserver(Protocol):
    """The node's view of what the client does (all called on the event loop)."""

    def reconciliation_started(self) -> None: ...

    def reconciliation_fetched(self, snapshot: VenueSnapshot) -> None: ...

    def reconciliation_failed(
        self, error: BaseException, venue_positions: list[VenuePosition] | None
    ) -> None: ...

    def resync_failed(self, error: BaseException) -> None: ...


class FleetBinanceFuturesExecutionClient(BinanceFuturesExecutionClient):
    def __init__(
        self,
        *args: Any,
        limiter: RequestLimiter,
        observer: ReconciliationObserver | None = None,
        scope: Iterable[str] = (),
        request_timeout: float = 10.0,
        max_rate_limit_wait: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._fetcher = Fetcher(
            account=self._futures_http_account,
            limiter=limiter,
            request_timeout=request_timeout,
            max_rate_limit_wait=max_rate_limit_wait,
        )
        self._observer = observer
        # Venue symbols this node trades; empty: every symbol of the account (the stock behaviour).
        self._scope = frozenset(venue_symbol(_instrument_id(i)) for i in scope)
        self.last_error: BaseException | None = None
        self.last_snapshot: VenueSnapshot | None = None

    # ---- defect 1: one name per symbol --------------------------------------------------------------

    def _get_cache_active_symbols(self) -> set[str]:
        symbols: set[str] = set()
        for order in self._cache.orders_open(venue=self.venue):
            symbols.add(venue_symbol(order.instrument_id))
        for order in self._cache.orders_inflight(venue=self.venue):
            symbols.add(venue_symbol(order.instrument_id))
        for position in self._cache.positions_open(venue=self.venue):
            symbols.add(venue_symbol(position.instrument_id))
        return symbols

    def _in_scope(self, symbol: str) -> bool:
        return not self._scope or symbol in self._scope or symbol in self._get_cache_active_symbols()

    # ---- startup reconciliation ----------------------------------------------------------------------

    async def generate_mass_status(self, lookback_mins: int | None = None) -> ExecutionMassStatus:
        """Everything the venue holds for this node, or an exception (never None, never a partial view)."""
        if lookback_mins:
            log.info(
                "reconciliation lookback of %s min ignored: it would hide older open stops", lookback_mins
            )
        if self._observer is not None:
            self._observer.reconciliation_started()
        self.reconciliation_active = True
        self._fetcher.last_position_risk = None
        try:
            mass_status, snapshot = await self._mass_status()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an ExceptionGroup from the concurrent fetch, or a parse error
            error = first_error(exc)
            self.last_error = error
            log.error("reconciliation fetch failed: %s", error)
            if self._observer is not None:
                self._observer.reconciliation_failed(error, self._known_positions())
            raise error from None
        finally:
            self.reconciliation_active = False
        self.last_error = None
        self.last_snapshot = snapshot
        if self._observer is not None:
            self._observer.reconciliation_fetched(snapshot)
        return mass_status

    async def _mass_status(self) -> tuple[ExecutionMassStatus, VenueSnapshot]:
        cached_symbols = self._get_cache_active_symbols()

        def symbols_for(rows: VenueRows) -> set[str]:
            found = set(cached_symbols)
            found.update(p.symbol for p in rows.position_risk if float(p.positionAmt) != 0)
            found.update(o.symbol for o in rows.open_orders)
            found.update(a.symbol for a in rows.open_algos)
            return {s for s in found if not self._scope or s in self._scope or s in cached_symbols}

        rows = await fetch_for_reconciliation(self._fetcher, symbols_for)
        ts = self._clock.timestamp_ns()
        built = build_reports(
            self._report_context(ts),
            position_risk=rows.position_risk,
            open_orders=rows.open_orders,
            open_algos=rows.open_algos,
            all_orders=[o for orders in rows.all_orders.values() for o in orders],
            all_algos=[a for algos in rows.all_algos.values() for a in algos],
            trades=[t for trades in rows.trades.values() for t in trades],
            fetched_symbols=set(rows.trades),
            in_scope=lambda s: not self._scope or s in self._scope or s in cached_symbols,
        )
        mass_status = ExecutionMassStatus(
            client_id=self.id, account_id=self.account_id, venue=self.venue, report_id=UUID4(), ts_init=ts
        )
        mass_status.add_order_reports(reports=built.orders)
        mass_status.add_fill_reports(reports=built.fills)
        mass_status.add_position_reports(reports=built.positions)
        for note in built.rekeyed:
            log.info("triggered stop re-keyed to the cached order: %s", note)
        for cid in built.rejected_inflight:
            log.warning("cached in-flight order %s is unknown to the venue: rejected", cid)
        log.info(
            "reconciliation fetched %d symbols with %d requests in %.3fs: %d orders, %d fills, %d positions",
            len(rows.trades),
            rows.requests,
            rows.seconds,
            len(built.orders),
            len(built.fills),
            len(built.positions),
        )
        snapshot = VenueSnapshot(
            positions=built.venue_positions,
            open_orders=built.venue_open_orders,
            symbols=sorted(rows.trades),
            requests=rows.requests,
            seconds=rows.seconds,
            rekeyed=built.rekeyed,
            rejected_inflight=built.rejected_inflight,
            not_reported=built.not_reported,
            history_mismatches=[m.detail() for m in built.history_mismatches],
            fills=[venue_fill(f) for f in built.fills],
        )
        return mass_status, snapshot

    def _known_positions(self) -> list[VenuePosition] | None:
        """The venue's positions from this attempt's positionRisk answer, if that call succeeded."""
        rows = self._fetcher.last_position_risk
        if rows is None:
            return None
        return self._position_reports(rows, self._in_scope).venue_positions

    def _position_reports(self, rows: list[Any], in_scope: Callable[[str], bool]) -> BuiltReports:
        """Reports built from positionRisk rows alone."""
        return build_reports(
            self._report_context(self._clock.timestamp_ns()),
            position_risk=rows,
            open_orders=[],
            open_algos=[],
            all_orders=[],
            all_algos=[],
            trades=[],
            fetched_symbols=set(),
            in_scope=in_scope,
        )

    def _report_context(self, ts: int) -> ReportContext:
        return ReportContext(
            account_id=self.account_id,
            instrument_id=self._get_cached_instrument_id,
            enum_parser=self._futures_enum_parser,
            treat_expired_as_canceled=self._treat_expired_as_canceled,
            use_position_ids=self._use_position_ids,
            cache=self._cache,
            venue=self.venue,
            ts_init=ts,
        )

    # ---- defect 5 in the report methods the engine calls after startup ---------------------------------

    async def generate_order_status_reports(self, command: Any) -> list[Any]:
        symbol = venue_symbol(command.instrument_id) if command.instrument_id is not None else None
        if command.open_only:
            orders, algos = await asyncio.gather(
                self._fetcher.open_orders(symbol), self._fetcher.open_algos(symbol)
            )
            start_ms = end_ms = None
        else:
            symbols = [symbol] if symbol else sorted(await self._active_symbols())
            fetched = await asyncio.gather(
                *(self._fetcher.all_orders(s) for s in symbols),
                *(self._fetcher.all_algos(s) for s in symbols),
                self._fetcher.open_orders(symbol),
                self._fetcher.open_algos(symbol),
            )
            n = len(symbols)
            orders = [o for rows in fetched[:n] for o in rows] + list(fetched[-2])
            algos = [a for rows in fetched[n : 2 * n] for a in rows] + list(fetched[-1])
            start_ms = secs_to_millis(command.start.timestamp()) if command.start is not None else None
            end_ms = secs_to_millis(command.end.timestamp()) if command.end is not None else None
        ts = self._clock.timestamp_ns()
        built = build_reports(
            self._report_context(ts),
            position_risk=[],
            open_orders=[],
            open_algos=[],
            all_orders=_window(latest(orders, key=lambda o: o.orderId).values(), start_ms, end_ms),
            all_algos=_window(latest(algos, key=lambda a: a.algoId).values(), start_ms, end_ms),
            trades=[],
            fetched_symbols=set(),  # in-flight orders are the startup's and the engine's own business here
            in_scope=self._in_scope,
        )
        return built.orders

    async def generate_fill_reports(self, command: Any) -> list[Any]:
        symbol = venue_symbol(command.instrument_id) if command.instrument_id is not None else None
        symbols = [symbol] if symbol else sorted(await self._active_symbols())
        start_ms = secs_to_millis(command.start.timestamp()) if command.start is not None else None
        end_ms = secs_to_millis(command.end.timestamp()) if command.end is not None else None
        fetched = await asyncio.gather(*(self._fetcher.trades(s, start_ms, end_ms) for s in symbols))
        built = build_reports(
            self._report_context(self._clock.timestamp_ns()),
            position_risk=[],
            open_orders=[],
            open_algos=[],
            all_orders=[],
            all_algos=[],
            trades=[t for rows in fetched for t in rows],
            fetched_symbols=set(),
            in_scope=self._in_scope,
        )
        fills = built.fills
        if command.venue_order_id is not None:
            fills = [f for f in fills if f.venue_order_id == command.venue_order_id]
        return fills

    async def generate_position_status_reports(self, command: Any) -> list[Any]:
        symbol = venue_symbol(command.instrument_id) if command.instrument_id is not None else None
        rows = await self._fetcher.position_risk(symbol)
        built = self._position_reports(rows, (lambda s: True) if symbol else self._in_scope)
        reports: list[Any] = built.positions
        if command.instrument_id is not None and not reports:
            # Asked about one instrument the venue holds nothing of: say so explicitly (flat).
            now = self._clock.timestamp_ns()
            reports = [
                PositionStatusReport(
                    account_id=self.account_id,
                    instrument_id=command.instrument_id,
                    position_side=PositionSide.FLAT,
                    quantity=Quantity.zero(),
                    report_id=UUID4(),
                    ts_last=now,
                    ts_init=now,
                )
            ]
        return reports

    async def _active_symbols(self) -> set[str]:
        symbols = self._get_cache_active_symbols()
        risk, orders, algos = await asyncio.gather(
            self._fetcher.position_risk(), self._fetcher.open_orders(), self._fetcher.open_algos()
        )
        symbols.update(p.symbol for p in risk if float(p.positionAmt) != 0)
        symbols.update(o.symbol for o in orders)
        symbols.update(a.symbol for a in algos)
        return {s for s in symbols if self._in_scope(s)}

    # ---- listen-key rotation / user stream reconnect ----------------------------------------------------

    async def _reconcile_after_resubscribe(self) -> None:
        """The stock client swallows a failed re-sync; here it is retried, then escalated to the node."""
        delay = RESYNC_FIRST_DELAY_S
        for attempt in range(1, RESYNC_ATTEMPTS + 1):
            try:
                mass_status = await self.generate_mass_status(lookback_mins=None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempt == RESYNC_ATTEMPTS:
                    log.error("re-sync after the user stream reconnected failed %d times: %s", attempt, exc)
                    if self._observer is not None:
                        self._observer.resync_failed(exc)
                    return
                log.warning("re-sync attempt %d failed (%s); retrying in %.1fs", attempt, exc, delay)
                await asyncio.sleep(delay)
                delay *= 2
                continue
            self._send_mass_status_report(mass_status)
            return


def _instrument_id(value: str) -> Any:
    from nautilus_trader.model.identifiers import InstrumentId

    return InstrumentId.from_str(value)


def _window(rows: Iterable[Any], start_ms: int | None, end_ms: int | None) -> list[Any]:
    """History rows within [start, end] by creation time; open ones always (defect 4)."""
    kept = []
    for row in rows:
        created = getattr(row, "time", None) or getattr(row, "createTime", None) or 0
        is_open = _is_open(row)
        if not is_open and start_ms is not None and created < start_ms:
            continue
        if not is_open and end_ms is not None and created > end_ms:
            continue
        kept.append(row)
    return kept


def _is_open(row: Any) -> bool:
    status = getattr(row, "algoStatus", None) or getattr(row, "status", None)
    return str(getattr(status, "value", status) or "").upper() in {"NEW", "PARTIALLY_FILLED", "TRIGGERING"}


__all__ = ["FleetBinanceFuturesExecutionClient", "ReconciliationObserver", "VenueFetchError"]


def venue_fill(report: Any) -> VenueFill:
    """A nautilus FillReport, as plain values."""
    qty = Decimal(str(report.last_qty))
    return VenueFill(
        instrument_id=str(report.instrument_id),
        venue_order_id=report.venue_order_id.value,
        client_order_id=report.client_order_id.value if report.client_order_id is not None else None,
        trade_id=report.trade_id.value,
        signed_qty=qty if report.order_side.name == "BUY" else -qty,
    )
