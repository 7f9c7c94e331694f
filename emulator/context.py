"""What a REST handler gets: the venue, the request's parameters and the authenticated account."""

from __future__ import annotations

from dataclasses import dataclass

from emulator.commands import symbol_of
from emulator.params import Params
from emulator.state import Account
from emulator.symbols import SymbolSpec
from emulator.venue import Venue


@dataclass(slots=True)
class RequestContext:
    venue: Venue
    params: Params
    account_or_none: Account | None
    now: int

    @property
    def account(self) -> Account:
        assert self.account_or_none is not None, "signed endpoints always carry an account"
        return self.account_or_none

    def symbol(self) -> SymbolSpec:
        return symbol_of(self.params, self.venue.specs)

    def optional_symbol(self) -> SymbolSpec | None:
        return self.symbol() if self.params.has("symbol") else None
