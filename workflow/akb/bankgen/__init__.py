"""Building an AKB-style benchmark: taxonomy-guided question generation, automatic checks, human review.

The pipeline, one module per step (each step is an `akb bankgen-*` command and a Snakemake rule):

1. `generate`: every generator model writes candidate questions for every subcategory of a taxonomy,
   from a versioned prompt file (`prompts`), in a strict JSON format (`parse`); raw outputs are cached
   per request, malformed generations go to a rejects file with the reason.
2. `screen`: near-duplicates of the existing bank and of other candidates are removed (sentence
   embeddings, `embed`), answer letters are rebalanced by a seeded shuffle of the options.
3. cross-check: other models (and the generator) answer each candidate with the probe stage itself.
4. `report`: flags from the cross-check, and a report of what was removed and why.
5. `review`: a review sheet (CSV and a self-contained HTML page) and the import of the reviewer's
   decisions into a verified bank with provenance per item; `release` gives it a version and checksum.
"""
