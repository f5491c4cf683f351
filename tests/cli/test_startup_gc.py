"""The command line turns the garbage collector off until the console's first frame, and
always turns it back on."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from deploytui.cli import main
from deploytui.ui.app import DeployApp


@pytest.fixture(autouse=True)
def _collector_on() -> object:
    yield
    gc.enable()
    gc.unfreeze()  # what a test froze goes back to normal collection for the rest of the run


def test_a_subcommand_runs_with_the_collector_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[bool] = []
    config = tmp_path / "c.toml"
    config.write_text("")
    import deploytui.cli.config_cmd as config_cmd

    original = config_cmd.run_check

    def spy(args: object) -> int:
        seen.append(gc.isenabled())
        return original(args)  # type: ignore[arg-type]

    config_cmd.run_check = spy  # type: ignore[assignment]
    try:
        assert main(["config", "check", str(config)]) == 0
    finally:
        config_cmd.run_check = original  # type: ignore[assignment]
    assert seen == [True] and gc.isenabled()


def test_a_bad_config_leaves_the_collector_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[console]\nrefresh_interval = 'soon'\n")
    assert main(["--config", str(bad)]) == 2
    assert "refresh_interval" in capsys.readouterr().err
    assert gc.isenabled()


def test_bad_arguments_leave_the_collector_on(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--no-such-option"])
    assert gc.isenabled()


def test_the_console_turns_it_back_on_after_its_first_frame() -> None:
    gc.disable()
    DeployApp._first_frame_drawn()
    assert gc.isenabled()
    # Already on (tests, embedding): nothing is frozen or changed.
    frozen = gc.get_freeze_count()
    DeployApp._first_frame_drawn()
    assert gc.isenabled() and gc.get_freeze_count() == frozen
