"""Harness of the malformed-input matrix: run an `akb` command in-process and read its verdict.

A user who hands the workflow a bad file must get exit != 0 (or a documented warning), one clear
message naming the file and the item, line or field, no traceback, and no output that looks
complete. `akb_verdict` runs the command the way the console script does (`akb.cli.main`): an
exception that escapes it is the traceback a user would see, so the test fails on it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from akb.cli import main


@dataclass(frozen=True)
class Verdict:
    rc: int
    messages: str  # every warning and error line the command logged

    def refused(self, *names: str, outputs: tuple[str | Path, ...] = ()) -> None:
        """Exit != 0, a message naming each of `names` (file, item, line or field), no output."""
        assert self.rc != 0, f"accepted (exit 0); messages: {self.messages!r}"
        for name in names:
            assert str(name) in self.messages, f"{name!r} not named in {self.messages!r}"
        for out in outputs:
            assert not Path(out).exists(), f"{out} written although the input was refused"

    def warned(self, *names: str) -> None:
        """Exit 0 with a warning naming each of `names`."""
        assert self.rc == 0, f"refused (exit {self.rc}): {self.messages!r}"
        for name in names:
            assert str(name) in self.messages, f"{name!r} not named in {self.messages!r}"


def akb_verdict(argv: list[str], caplog, capsys=None) -> Verdict:
    """With `capsys`, what the command printed counts as messages too: a report command such as
    `akb validate-bank` prints the problems it finds."""
    caplog.clear()
    if capsys is not None:
        capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        rc = main([str(a) for a in argv])
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    if capsys is not None:
        lines.append(capsys.readouterr().out)
    return Verdict(rc, "\n".join(lines))
