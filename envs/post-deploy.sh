#!/usr/bin/env bash
# Installs the project into a conda env that Snakemake has just created (`--sdm conda`), so that the
# env's `python -m akb ...` imports the project from the env itself. Snakemake runs
# envs/<env>.post-deploy.sh (links to this file) inside the new env, from a copy it makes under
# .snakemake/conda/, so the script cannot find the clone from its own path: it takes AKB_REPO, which
# the Snakefile sets to the clone it was read from (akb.job_env).
#   --no-deps  the env file chose the packages (from conda-forge); pip must add neither PyPI copies
#              of them nor the project's other dependencies (torch into the tables env)
#   -e         the env follows the clone's code, as the jobs' PYTHONPATH does, instead of a copy
#              frozen when the env was created (Snakemake rebuilds an env only when its file changes)
set -eu
python -m pip install --quiet --no-deps -e "${AKB_REPO:?AKB_REPO (the clone to install) is unset: run this through snakemake --sdm conda}"
