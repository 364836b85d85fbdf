"""Cross-field checks of the config's `bankgen` block (its keys and defaults are in the schema)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from akb.config import ConfigError, model_entry, packaged_model_dir


def check_bankgen(config: dict[str, Any]) -> None:
    """Generators and cross-checkers must be declared models; API models cannot be prefilled."""
    settings = config["bankgen"]
    names = [m["name"] for m in config["models"]]
    for key, listed in (("generators", settings["generators"]), ("crosscheck.models", settings["crosscheck"]["models"])):
        unknown = [n for n in listed if n not in names]
        if unknown:
            raise ConfigError(f"invalid configuration:\n  config.bankgen.{key}: unknown model(s) {unknown}; "
                              f"declared: {names}")
    if settings["prefill"]:
        api = [g for g in settings["generators"] if model_entry(config, g)["backend"] == "api"]
        if api:
            raise ConfigError(f"invalid configuration:\n  config.bankgen.prefill: API generators {api} cannot "
                              "have their answer prefilled; set prefill: false or use local generators")


def crosscheck_models(settings: dict[str, Any]) -> list[str]:
    """Models that answer the candidates: the checkers, then the generators when they answer too."""
    models = list(settings["crosscheck"]["models"])
    if settings["crosscheck"]["generator_answers"]:
        models += [g for g in settings["generators"] if g not in models]
    return models


def decisions_path(settings: dict[str, Any]) -> str:
    return settings["decisions"] or f"review/{settings['name']}/decisions.json"


def existing_file(path: str) -> list[str]:
    """A local input file as a job input (edits rerun the step); a missing one is reported by the job."""
    return [path] if Path(path).is_file() else []


def generator_inputs(config: dict[str, Any], name: str) -> list[str]:
    """What a generation job reads: taxonomy, prompt file, the examples' bank, the model directory."""
    from akb.bankgen.prompts import resolve_prompt
    from akb.bankgen.taxonomy import resolve_taxonomy
    from akb.data.bank import resolve_source

    settings = config["bankgen"]
    return [
        *existing_file(str(resolve_taxonomy(settings["taxonomy"]))),
        *existing_file(str(resolve_prompt(settings["prompt"]))),
        *(existing_file(resolve_source(settings["existing_bank"])) if settings["examples"] else []),
        *packaged_model_dir(config, name),
    ]


def bankgen_targets(settings: dict[str, Any], out_dir: str) -> list[str]:
    """The report and the review sheet; the release too once the reviewer's decisions exist."""
    if not settings["generators"]:
        return []
    targets = [f"{out_dir}/report.md", f"{out_dir}/review.csv", f"{out_dir}/review.html"]
    if Path(decisions_path(settings)).is_file():
        targets.append(f"{out_dir}/release/manifest.json")
    return targets
