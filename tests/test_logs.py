"""The kit's diagnostics are logging records: forwarded for a block, seen by caplog too."""

from __future__ import annotations

import logging

import pytest

from ci_kit.logs import LOGGER, forwarded_to


def test_forwarding_opens_the_kits_logger_for_the_block_and_puts_it_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("ci_kit.some_module")
    kit = logging.getLogger(LOGGER)
    before = (kit.level, list(kit.handlers))
    progress: list[str] = []
    commands: list[str] = []
    with forwarded_to(progress.append), forwarded_to(commands.append, level=logging.DEBUG):
        logger.info("building template %s", "t_tpl_1")
        logger.debug("pg_ctl start")
    logger.info("after the block")

    assert progress == ["building template t_tpl_1"]  # INFO and up only
    assert commands == ["building template t_tpl_1", "pg_ctl start"]
    assert (kit.level, kit.handlers) == before
    # Propagated as any library's records are: what caplog and --log-cli-level see.
    assert "building template t_tpl_1" in caplog.messages


def test_a_logger_already_more_verbose_is_left_as_the_user_set_it() -> None:
    kit = logging.getLogger(LOGGER)
    kit.setLevel(logging.DEBUG)
    try:
        with forwarded_to(lambda _: None, level=logging.INFO):
            assert kit.level == logging.DEBUG
        assert kit.level == logging.DEBUG
    finally:
        kit.setLevel(logging.NOTSET)


def test_a_broken_output_does_not_end_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(_: str) -> None:
        raise BrokenPipeError("the terminal went away")

    with forwarded_to(broken):
        logging.getLogger("ci_kit.x").info("still fine")
    assert "the terminal went away" in capsys.readouterr().err  # logging's own report
