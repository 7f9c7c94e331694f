"""A strategy module that raises at import, as a user's module with a bug at its top level does (issue 9).

Imported only by the node processes of the tests that expect it to fail; importing it raises TypeError.
"""

from __future__ import annotations

SIZE = "0.010"
raise TypeError(f"unsupported operand type(s) for +: 'int' and 'str' (size {SIZE!r})")
