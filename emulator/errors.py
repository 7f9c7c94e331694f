"""The venue's error answers: Binance USD-M error codes, messages and the HTTP status each comes with.

Handlers raise `VenueError`; the server turns it into `{"code": ..., "msg": ...}` with `status`. The
constructors below keep the exact wording of the real venue so that clients that match on messages
(ccxt does, for some errors) behave as they would against Binance.
"""

from __future__ import annotations

DECIMAL_PATTERN = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
INTEGER_PATTERN = r"^[0-9]{1,20}$"
CLIENT_ID_PATTERN = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"


class VenueError(Exception):
    """An error the venue answers with; carries the Binance code, message and HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def unknown_error() -> VenueError:
    return VenueError(-1000, "An unknown error occured while processing the request.", 500)


def service_unavailable() -> VenueError:
    return VenueError(-1001, "Internal error; unable to process your request. Please try again.", 503)


def backend_timeout() -> VenueError:
    return VenueError(
        -1007,
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
        408,
    )


def too_many_requests(
    limit: int, retry_after_s: int, interval: tuple[str, int] = ("MINUTE", 1), address: str = "127.0.0.1"
) -> VenueError:
    name, count = interval
    per = name.lower() if count == 1 else f"{count} {name.lower()}s"
    return VenueError(
        -1003,
        f"Too many requests; current limit of IP({address}) request weight is {limit} per {per}. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        429,
        {"Retry-After": str(retry_after_s)},
    )


def banned(until_ms: int, retry_after_s: int, address: str = "127.0.0.1") -> VenueError:
    return VenueError(
        -1003,
        f"Way too many requests; IP({address}) banned until {until_ms}. "
        "Please use the websocket for live updates to avoid bans.",
        418,
        {"Retry-After": str(retry_after_s)},
    )


def timestamp_outside_window() -> VenueError:
    return VenueError(-1021, "Timestamp for this request is outside of the recvWindow.")


def timestamp_ahead() -> VenueError:
    return VenueError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def bad_signature() -> VenueError:
    return VenueError(-1022, "Signature for this request is not valid.")


def illegal_characters(name: str, pattern: str) -> VenueError:
    return VenueError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{pattern}'.")


def mandatory_missing(name: str) -> VenueError:
    return VenueError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def param_not_required(name: str) -> VenueError:
    return VenueError(-1106, f"Parameter '{name}' sent when not required.")


def precision_over_maximum() -> VenueError:
    return VenueError(-1111, "Precision is over the maximum defined for this asset.")


def invalid_tif() -> VenueError:
    return VenueError(-1115, "Invalid timeInForce.")


def invalid_order_type() -> VenueError:
    return VenueError(-1116, "Invalid orderType.")


def invalid_side() -> VenueError:
    return VenueError(-1117, "Invalid side.")


def invalid_interval() -> VenueError:
    return VenueError(-1120, "Invalid interval.")


def invalid_symbol() -> VenueError:
    return VenueError(-1121, "Invalid symbol.")


def invalid_listen_key() -> VenueError:
    return VenueError(-1125, "This listenKey does not exist.")


def lookup_interval_too_big(hours: int) -> VenueError:
    return VenueError(-1127, f"More than {hours} hours between startTime and endTime.")


def combination_invalid() -> VenueError:
    return VenueError(-1128, "Combination of optional parameters invalid.")


def invalid_value(name: str) -> VenueError:
    return VenueError(-1130, f"Data sent for parameter '{name}' is not valid.")


def recv_window_too_large() -> VenueError:
    return VenueError(-1131, "recvWindow must be less than 60000")


def unknown_order_sent() -> VenueError:
    return VenueError(-2011, "Unknown order sent.")


def order_does_not_exist() -> VenueError:
    return VenueError(-2013, "Order does not exist.")


def api_key_format_invalid() -> VenueError:
    return VenueError(-2014, "API-key format invalid.", 401)


def invalid_api_key() -> VenueError:
    return VenueError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def margin_insufficient() -> VenueError:
    return VenueError(-2019, "Margin is insufficient.")


def would_immediately_trigger() -> VenueError:
    return VenueError(-2021, "Order would immediately trigger.")


def reduce_only_rejected() -> VenueError:
    return VenueError(-2022, "ReduceOnly Order is rejected.")


def qty_not_positive() -> VenueError:
    return VenueError(-4003, "Quantity less than or equal to zero.")


def qty_below_min() -> VenueError:
    return VenueError(-4004, "Quantity less than min quantity.")


def qty_above_max() -> VenueError:
    return VenueError(-4005, "Quantity greater than max quantity.")


def price_below_min() -> VenueError:
    return VenueError(-4013, "Price less than min price.")


def price_not_tick_multiple() -> VenueError:
    return VenueError(-4014, "Price not increased by tick size.")


def limit_price_too_high(bound: str) -> VenueError:
    return VenueError(-4016, f"Limit price can't be higher than {bound}.")


def qty_not_step_multiple() -> VenueError:
    return VenueError(-4023, "Quantity not increased by step size.")


def limit_price_too_low(bound: str) -> VenueError:
    return VenueError(-4024, f"Limit price can't be lower than {bound}.")


def max_stop_orders() -> VenueError:
    return VenueError(-4045, "Reach max stop order limit.")


def no_need_to_change_margin_type() -> VenueError:
    return VenueError(-4046, "No need to change margin type.")


def no_need_to_change_position_side() -> VenueError:
    return VenueError(-4059, "No need to change position side.")


def position_side_mismatch() -> VenueError:
    return VenueError(-4061, "Order's position side does not match user's setting.")


def duplicate_client_order_id() -> VenueError:
    return VenueError(-4116, "ClientOrderId is duplicated.")


def use_algo_endpoint() -> VenueError:
    return VenueError(
        -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
    )


def notional_too_small(minimum: str) -> VenueError:
    return VenueError(
        -4164, f"Order's notional must be no smaller than {minimum} (unless you choose reduce only)."
    )


def no_need_to_modify() -> VenueError:
    return VenueError(-5027, "No need to modify the order.")


def post_only_rejected() -> VenueError:
    return VenueError(
        -5022, "Due to the order could not be executed as maker, the Post Only order will be rejected."
    )


def invalid_path(path: str, method: str) -> VenueError:
    return VenueError(-5000, f"Path {path}, Method {method} is invalid", 404)
