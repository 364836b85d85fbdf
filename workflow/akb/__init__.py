"""Library behind the AKB study workflow: question banks, model backends, probing, scoring."""

from pathlib import Path

__version__ = "0.1.0"

# Small files that ship with the study (taxonomy, original question bank). The workflow is run from
# a clone, and the package is installed in editable mode, so they live beside the package.
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
