"""The study's configuration: schema validation with defaults, and cross-field checks."""

from __future__ import annotations

import copy
import difflib
import functools
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from akb.io import read_yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"
RECIPES_PATH = Path(__file__).resolve().parent.parent / "data" / "recipes.yaml"


class ConfigError(ValueError):
    """An invalid configuration; the message names the offending key."""


def _with_defaults(validator_class):
    """A validator that also fills in each property's `default` (as Snakemake's validate does)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def fill(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
                elif key in instance:
                    instance[key] = _scalar_from_text(instance[key], sub)
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": fill})


def _scalar_from_text(value: Any, schema: dict) -> Any:
    """A number, boolean or null written as text where the schema wants one, as its value.

    Snakemake's `--config 'bank={limit: 20}'` hands nested values over as strings ("20"); a user
    who writes that means the number. Text that reads as no allowed type stays text, and fails."""
    allowed = schema.get("type")
    allowed = {allowed} if isinstance(allowed, str) else set(allowed or ())
    if not isinstance(value, str) or "string" in allowed or not allowed & {"integer", "number", "boolean", "null"}:
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    kinds = {bool: "boolean", int: "integer", float: "number", type(None): "null"}
    kind = kinds.get(type(parsed))
    if kind == "integer" and "integer" not in allowed and "number" in allowed:
        kind = "number"
    return parsed if kind in allowed else value


def _key_path(path) -> str:
    text = "config"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _schema_message(error) -> str:
    """jsonschema's message, but an unknown key is named as such, with the nearest allowed key: a
    typo (`modles:`) must read as one, not as "does not match any of the regexes"."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return error.message
    allowed = list(error.schema.get("properties", {}))
    patterns = list(error.schema.get("patternProperties", {}))
    unknown = [k for k in error.instance if k not in allowed and not any(re.search(p, str(k)) for p in patterns)]
    named = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
        named.append(f"unknown key {key!r} ({hint})")
    return "; ".join(named)


def _merged(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """`base` with `own` laid over it, key by key into nested blocks: `own`'s values win."""
    merged = copy.deepcopy(base)
    for key, value in own.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def apply_recipe(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with its `grounded.recipe` (workflow/data/recipes.yaml) filling the grounded settings it
    leaves out. A recipe's DeSTA-AQA5M subsample applies only to a config that reads DeSTA-AQA5M."""
    grounded = config.get("grounded") or {}
    name = grounded.get("recipe")
    if name is None:
        return config
    recipes = read_yaml(RECIPES_PATH)
    if name not in recipes:
        raise ConfigError(f"invalid configuration:\n  config.grounded.recipe: unknown recipe {name!r}; "
                          f"one of {sorted(recipes)} ({RECIPES_PATH})")
    recipe = copy.deepcopy(recipes[name])
    if "desta_aqa" not in (grounded.get("distill") or {}):
        recipe.get("distill", {}).pop("desta_aqa", None)
    return {**config, "grounded": _merged(recipe, grounded)}


def validate_config(config: dict[str, Any], schema_path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """Return a validated copy of `config` with its recipe applied and defaults filled in, or raise
    ConfigError."""
    schema = yaml.safe_load(schema_path.read_text())
    config = apply_recipe(copy.deepcopy(config))
    errors = sorted(_with_defaults(Draft202012Validator)(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        raise ConfigError(
            "invalid configuration:\n" + "\n".join(f"  {_key_path(e.path)}: {_schema_message(e)}" for e in errors)
        )
    for block in ("models", "captioners", "audio_benchmarks", "audio_llms"):  # names key result paths: one each
        listed = [entry["name"] for entry in config[block]]
        duplicated = sorted({n for n in listed if listed.count(n) > 1})
        if duplicated:
            raise ConfigError(f"invalid configuration:\n  config.{block}: duplicate name(s) {duplicated}")
    names = [m["name"] for m in config["models"]]
    for stage, key in (("probe", "models"), ("cascade", "models"), ("grounded", "backbones")):
        unknown = [n for n in config[stage][key] or [] if n not in names]
        if unknown:
            raise ConfigError(
                f"invalid configuration:\n  config.{stage}.{key}: unknown model(s) {unknown}; declared: {names}"
            )
    for i, captioner in enumerate(config["captioners"]):
        unknown = [n for n in captioner.get("models") or [] if n not in names]
        if unknown:
            raise ConfigError(f"invalid configuration:\n  config.captioners[{i}].models ({captioner['name']}): "
                              f"unknown model(s) {unknown}; declared: {names}")
    for i, entry in enumerate(config["audio_llms"]):  # the backbone condition runs this models[] entry
        if entry["text_backbone"] not in names:
            raise ConfigError(f"invalid configuration:\n  config.audio_llms[{i}].text_backbone ({entry['name']}): "
                              f"unknown model {entry['text_backbone']!r}; declared: {names}")
    main = config["cascade"]["main_captioner"]
    captioners = [c["name"] for c in config["captioners"]]
    if main is not None and main not in captioners:
        raise ConfigError(f"invalid configuration:\n  config.cascade.main_captioner: {main!r} is not a captioner; "
                          f"declared: {captioners}")
    benchmarks = [b["name"] for b in config["audio_benchmarks"]]
    if any(b["fetch"] for b in config["audio_benchmarks"]):
        from akb.data.fetch import check_fetch_entries  # only then: it imports the benchmark loader

        problems = check_fetch_entries(config["audio_benchmarks"])
        if problems:
            raise ConfigError("invalid configuration:\n" + "\n".join(f"  config.audio_benchmarks{p}" for p in problems))
    for stage in ("grounded", "diagnostics"):
        unknown = [b for b in config[stage]["benchmarks"] or [] if b not in benchmarks]
        if unknown:
            raise ConfigError(f"invalid configuration:\n  config.{stage}.benchmarks: unknown benchmark(s) {unknown}; "
                              f"declared: {benchmarks}")
    for name in config["grounded"]["backbones"]:
        if model_entry(config, name)["backend"] == "api":
            raise ConfigError(f"invalid configuration:\n  config.grounded.backbones: {name} is an API model; "
                              "an audio LLM needs the backbone's weights")
    distill = config["grounded"]["distill"]
    if distill.get("desta_aqa") and distill["seeds"] != "synthetic":
        raise ConfigError("invalid configuration:\n  config.grounded.distill: seeds and desta_aqa both name the "
                          "seeds; desta_aqa writes resources/desta_aqa/seeds.jsonl: remove `seeds`")
    unknown = [m for m in config["diagnostics"]["models"] if m not in config["grounded"]["backbones"]]
    if unknown:
        raise ConfigError(f"invalid configuration:\n  config.diagnostics.models: {unknown} are not grounded "
                          f"backbones (grounded.backbones: {config['grounded']['backbones']})")
    for i, entry in enumerate(config["models"]):
        if entry["backend"] == "api" and probe_settings(config, entry["name"])["mode"] != "generate":
            raise ConfigError(
                f"invalid configuration:\n  config.models[{i}] ({entry['name']}): API models cannot give "
                "log-likelihoods; set probe_mode: generate on the entry"
            )
    if (config["grounded"]["backbones"] and not distill.get("desta_aqa") and distill["seeds"] == "synthetic"
            and not config["synthetic"]["n_train"]):
        raise ConfigError("invalid configuration:\n  config.synthetic.n_train: the grounded stage distils from "
                          "the synthetic train split (grounded.distill.seeds: synthetic), which is empty")
    _check_knowledge_dose(config, names)
    shared = sorted({a["name"] for a in config["audio_llms"]} & set(names))
    if shared:  # both kinds of diagnostics run are written under results/diagnostics/<name>/
        raise ConfigError(f"invalid configuration:\n  config.audio_llms: name(s) {shared} are also models[] "
                          "names; their results would share results/diagnostics/<name>/: rename one")
    return config


# What experiments.knowledge_dose.grounded may change for the variants' audio LLMs: how they are
# distilled, trained and evaluated; not the clips, encoder or transcripts every audio LLM shares.
DOSE_GROUNDED_KEYS = ("connector", "distill", "train", "evaluate", "lora")
SHARED_DISTILL_KEYS = ("seeds", "desta_aqa", "shards", "audio_root")


def grounded_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """`grounded` as the audio LLM of model `name` is built: a knowledge-dose variant's with the
    experiment's overrides merged in (checked against the schema), anyone else's as configured."""
    from akb.knowledge_dose.variants import settings_of, variant_entries

    settings = settings_of(config)
    if not settings or not settings["grounded"] or name not in {e["name"] for e in variant_entries(config)}:
        return config["grounded"]
    merged = _merged(config["grounded"], settings["grounded"])
    schema = _schema()["properties"]["grounded"]
    errors = list(_with_defaults(Draft202012Validator)(schema).iter_errors(merged))
    if errors:
        raise ConfigError("; ".join(f"{_key_path(e.path).replace('config', 'grounded', 1)}: {_schema_message(e)}"
                                    for e in errors))
    return merged


def _check_knowledge_dose(config: dict[str, Any], names: list[str]) -> None:
    """Errors in the experiment's own block: what its audio LLMs may override, and variant names
    that would share result folders with declared models. (What it refers to elsewhere in the
    config is checked by knowledge_dose_problem, which stops the experiment alone.)"""
    from akb.knowledge_dose.variants import settings_of, variant_entries

    settings = settings_of(config)
    if not settings:
        return
    where = "invalid configuration:\n  config.experiments.knowledge_dose"
    fixed = sorted(set(settings["grounded"]) - set(DOSE_GROUNDED_KEYS))
    fixed += sorted(f"distill.{k}" for k in set(settings["grounded"].get("distill") or {}) & set(SHARED_DISTILL_KEYS))
    if fixed:
        raise ConfigError(f"{where}.grounded: {fixed} cannot differ for the variants (only "
                          f"{list(DOSE_GROUNDED_KEYS)}, without distill's {list(SHARED_DISTILL_KEYS)}): "
                          "the seeds, encoder and transcripts are shared with the study")
    variants = variant_entries(config)
    if variants:
        try:
            grounded_settings(config, variants[0]["name"])
        except ConfigError as e:
            raise ConfigError(f"{where}.grounded: {e}") from None
    clash = sorted({e["name"] for e in variants} & set(names))
    if clash:
        raise ConfigError(f"{where}: variant name(s) {clash} are also models[] names: rename the model")


def knowledge_dose_problem(config: dict[str, Any]) -> str | None:
    """Why the knowledge-dose experiment cannot run on this (valid) config, or None: a backbone,
    benchmark or captioner it names that the config does not declare (say, after replacing the
    demo's synthetic suite with MMAU). Not a config error: the study runs, `snakemake knowledge_dose`
    reports it."""
    from akb.knowledge_dose.variants import settings_of

    settings = settings_of(config)
    if not settings:
        return None
    where = "config.experiments.knowledge_dose"
    names = [m["name"] for m in config["models"]]
    benchmarks = [b["name"] for b in config["audio_benchmarks"]]
    captioners = [c["name"] for c in config["captioners"]]
    if settings["backbone"] not in names:
        return f"{where}.backbone: unknown model {settings['backbone']!r}; declared: {names}"
    if model_entry(config, settings["backbone"])["backend"] == "api":
        return f"{where}.backbone: {settings['backbone']} is an API model; LoRA training needs its weights"
    if settings["benchmark"] not in benchmarks:
        return f"{where}.benchmark: unknown benchmark {settings['benchmark']!r}; declared: {benchmarks}"
    if settings["captioner"] not in captioners:
        return f"{where}.captioner: unknown captioner {settings['captioner']!r}; declared: {captioners}"
    if config["synthetic"]["n_train"] == 0 and config["grounded"]["distill"]["seeds"] == "synthetic":
        return (f"{where}: the variants' audio LLMs distil from the synthetic train split (synthetic.n_train), "
                "which is empty")
    return None


def model_entry(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A declared model's entry, or a knowledge-dose variant's (derived from its backbone's)."""
    for entry in config["models"]:
        if entry["name"] == name:
            return entry
    from akb.knowledge_dose.variants import variant_entries

    for entry in variant_entries(config):
        if entry["name"] == name:
            return entry
    raise ConfigError(f"config.models: no model named {name!r}")


# Stages whose jobs load a model; a model's `resources` may hold a block per stage.
MODEL_STAGES = ("probe", "cascade", "distill", "train", "evaluate", "diagnose", "bankgen")


@functools.cache
def _schema(schema_path: Path = SCHEMA_PATH) -> dict[str, Any]:
    return yaml.safe_load(schema_path.read_text())


def schema_default(key: str) -> Any:
    """The schema's default of a setting, by its dotted key ("probe.batch_size"; "[]" steps into a
    list's entries: "captioners.[].batch_size"): the one home of a default that the command-line
    options of `akb` reuse."""
    node = _schema()
    for part in key.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    if "default" not in node:
        raise KeyError(f"{key}: the config schema gives no default")
    return node["default"]


def packaged_model_dir(config: dict[str, Any], name: str) -> list[str]:
    """The converted directory of model `name` when it is a packaged model (a job input: it must
    exist before the model runs), else nothing."""
    from akb.models import PACKAGED_ROOT

    entry = model_entry(config, name)
    return [str(PACKAGED_ROOT / entry["source"])] if entry["backend"] == "packaged" else []


def stage_resources(resources: dict[str, Any], stage: str, stages: tuple[str, ...]) -> dict[str, Any]:
    """`resources` as one stage's jobs get them: that stage's block (one of `stages`) applied over
    the shared keys, every stage block dropped."""
    shared = {k: v for k, v in resources.items() if k not in stages}
    return shared | resources.get(stage, {})


def stage_entry(config: dict[str, Any], name: str, stage: str) -> dict[str, Any]:
    """A model's entry as one stage's jobs see it: its resources with that stage's block applied
    (e.g. training asks for a longer runtime than probing) and the other stages' blocks dropped."""
    entry = copy.deepcopy(model_entry(config, name))
    if "resources" in entry:
        entry["resources"] = stage_resources(entry["resources"], stage, MODEL_STAGES)
    return entry


# Backends whose jobs never use a GPU, whatever their entry's resources say (a YAML anchor shared
# with GPU models, say): their jobs ask for none, so they never wait for, or hold, a GPU node.
CPU_ONLY_MODEL_BACKENDS = ("api",)
CPU_ONLY_CAPTIONER_BACKENDS = ("dsp", "file", "api")


def job_resources(resources: dict[str, Any], partitions: dict[str, Any], cpu_only: bool = False) -> dict[str, Any]:
    """A job's scheduling resources from its (stage-resolved) `resources`: gpu 0 when `cpu_only`,
    and `slurm_partition`: its own `partition`, else partitions.gpu for a job with a GPU, else
    partitions.cpu; "" (unset) lets the SLURM executor take the cluster's default partition."""
    scheduled = {k: v for k, v in resources.items() if k != "partition"}
    if cpu_only:
        scheduled["gpu"] = 0
    default = partitions["gpu"] if scheduled.get("gpu", 0) > 0 else partitions["cpu"]
    scheduled["slurm_partition"] = resources.get("partition") or default or ""
    return scheduled


# Blocks that hold a config's scheduling settings (what a job asks the cluster for: GPUs, memory,
# runtime, threads, nodes, partition): each entry's `resources` and the top-level `partitions`. They
# decide where and how long a job runs, never what it writes, so they stay out of every job's
# parameters: Snakemake reruns a finished job whose parameters change, and raising a job's memory
# after it ran out must not rerun the others. (A test checks that the schema has no such key elsewhere.)
SCHEDULING_BLOCKS = ("resources", "partitions")


def job_settings(entry: dict[str, Any]) -> dict[str, Any]:
    """A config entry (models[], captioners[], audio_llms[], the judge) as its jobs' parameters:
    without its scheduling blocks. A job learns its GPUs from the rule's resources (`--gpus`)."""
    return {k: v for k, v in entry.items() if k not in SCHEDULING_BLOCKS}


def schema_key_paths(schema_path: Path = SCHEMA_PATH) -> list[tuple[str, ...]]:
    """Every key path the schema describes, "*" standing for every entry of a list, e.g. ("models",
    "*", "resources"); the keys inside a scheduling block are not listed, the block itself is."""
    schema = _schema(schema_path)
    found = set()

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> None:
        if "$ref" in node:  # local references only: "#/$defs/x", "#/properties/models/items"
            target = schema
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            walk(target, path)
        for name, sub in node.get("properties", {}).items():
            found.add((*path, name))
            if name not in SCHEDULING_BLOCKS:
                walk(sub, (*path, name))
        if isinstance(node.get("items"), dict):
            walk(node["items"], (*path, "*"))
        for branch in (*node.get("allOf", ()), *node.get("oneOf", ()), *node.get("anyOf", ())):
            walk(branch, path)

    walk(schema, ())
    return sorted(found)


def scheduling_paths(schema_path: Path = SCHEMA_PATH) -> list[tuple[str, ...]]:
    """Where the schema puts scheduling blocks, e.g. ("models", "*", "resources"), ("diagnostics",
    "judge", "resources"), ("partitions",)."""
    return [path for path in schema_key_paths(schema_path) if path[-1] in SCHEDULING_BLOCKS]


def without_scheduling(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a validated `config` without any scheduling block: the parameters of a job that
    reads the whole config (the readiness check) and does not depend on where jobs run."""
    config = copy.deepcopy(config)
    for *parents, block in scheduling_paths():
        for holder in _values_at(config, parents):
            if isinstance(holder, dict):
                holder.pop(block, None)
    return config


def _values_at(value: Any, path: list[str]):
    """The values at a key path of scheduling_paths in `value` (none where a block is absent or null)."""
    if not path:
        yield value
    elif path[0] == "*" and isinstance(value, list):
        for item in value:
            yield from _values_at(item, path[1:])
    elif isinstance(value, dict) and value.get(path[0]) is not None:
        yield from _values_at(value[path[0]], path[1:])


def probe_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """Mode, batch size and generation length for one model (its own overrides win)."""
    entry, probe = model_entry(config, name), config["probe"]
    return {
        "mode": entry.get("probe_mode", probe["mode"]),
        "batch_size": entry.get("batch_size", probe["batch_size"]),
        "max_new_tokens": entry.get("max_new_tokens", probe["max_new_tokens"]),
    }


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The validated config of a YAML file; every error names the file."""
    config = read_yaml(path)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a configuration is a mapping of keys (models:, bank:, ...), "
                          f"not a {type(config).__name__}")
    try:
        return validate_config(config)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def cascade_pairs(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(captioner, model) of every cascade run: each captioner's own `models`, else cascade.models,
    else every model; none without audio benchmarks."""
    if not config["audio_benchmarks"]:
        return []
    default = config["cascade"]["models"] or [m["name"] for m in config["models"]]
    return [(c["name"], m) for c in config["captioners"] for m in (c.get("models") or default)]


def main_captioner(config: dict[str, Any]) -> str | None:
    """The captioner of the headline cascade metrics ("{benchmark} (Text)")."""
    captioners = [c["name"] for c in config["captioners"]]
    return config["cascade"]["main_captioner"] or (captioners[0] if captioners else None)
