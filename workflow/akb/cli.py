"""`akb <command>`: one sub-command per workflow step; each is usable on its own.

Each stage package owns its commands in its `cli` module (`add_commands(sub)` adds the parsers,
each handler a few lines calling the library); this root only collects them and turns input
errors into one line. Stage cli modules import their libraries inside the handlers, so listing the
commands (and running a light one, such as a table) never loads torch."""

from __future__ import annotations

import argparse
import importlib
import logging

log = logging.getLogger("akb")

# In the order of the study; `akb --help` lists the commands in this order.
STAGE_COMMANDS = (
    "akb.data.cli",         # banks, audio benchmarks, the synthetic suite, DeSTA seeds
    "akb.assets.cli",       # readiness, staging, packaged models, provenance
    "akb.probe.cli",        # stage 1
    "akb.cascade.cli",      # stage 2
    "akb.lalm.cli",         # stage 3: this project's audio LLMs
    "akb.audio_llms.cli",   # published audio LLMs
    "akb.scoring.cli",      # grading and the judge
    "akb.diagnostics.cli",  # stage 4
    "akb.report.cli",       # stage 5: tables and figures
    "akb.bankgen.cli",      # building a question bank
    "akb.knowledge_dose.cli",  # the knowledge-dose experiment
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="akb", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in STAGE_COMMANDS:
        importlib.import_module(module).add_commands(sub)
    return parser


def _one_line_error(e: BaseException) -> int | None:
    """The exit status for an error the user can act on, after logging it as one line; None for a
    bug, which keeps its traceback."""
    from akb.io import DISK_FULL
    from akb.models.api import APIError

    if isinstance(e, (ValueError, FileNotFoundError, KeyError, NotImplementedError)):
        # Input problems are reported as one clear line, not a traceback.
        log.error("%s", e.args[0] if isinstance(e, KeyError) and e.args else e)
        return 2
    if isinstance(e, OSError) and e.errno in DISK_FULL:
        # No room to write: one line naming the file. Outputs are renamed into place only when
        # complete, and a partial file's torn last line is dropped on resume, so a rerun with room
        # carries on from the last whole batch.
        log.error("%s: cannot write: %s (free some disk space, then run again to resume)",
                  e.filename or "an output file", e.strerror)
        return 1
    if isinstance(e, APIError):
        # A request that failed for good: the message names the model or captioner, the request
        # or clip, and the HTTP status; answered requests are cached, so a rerun resumes.
        log.error("%s", e)
        return 1
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
    try:
        return args.func(args)
    except Exception as e:
        status = _one_line_error(e)
        if status is None:
            raise
        return status
