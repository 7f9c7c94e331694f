from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.status.session import FileSessionCounter, SessionCounterError


async def test_counter_grows_and_survives_a_new_instance(tmp_path: Path) -> None:
    path = tmp_path / "state" / "mqtt-session"
    assert [await FileSessionCounter(path).next_session() for _ in range(3)] == [1, 2, 3]
    assert await FileSessionCounter(path).next_session() == 4  # a restarted process continues
    assert path.read_text() == "4\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "state" / "mqtt-session.tmp").exists()


async def test_a_corrupt_counter_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mqtt-session"
    path.write_text("garbage")
    with pytest.raises(SessionCounterError, match="not an integer") as caught:
        await FileSessionCounter(path).next_session()
    assert caught.value.path == path
