# Stage 5: metrics table, figures and tables from our results; the paper's figures from its numbers.


rule collect_metrics:
    """One table of every metric the run measured: models x metrics, n and intervals alongside."""
    input:
        probe=expand("results/probe/{model}/{bank}_scores.json", model=PROBE_MODELS, bank=BANK),
        cascade=cascade_score_files(),
        grounded=grounded_score_files(),
    output:
        csv=report("results/tables/metrics.csv", caption="../report/metrics.rst", category="Tables"),
        md="results/tables/metrics.md",
        tex="results/tables/metrics.tex",
        long="results/tables/metrics_long.csv",
    log:
        "logs/figures/collect_metrics.log",
    params:
        labels=model_labels(sorted(set(PROBE_MODELS) | set(CASCADE_MODELS) | set(GROUNDED_MODELS))),
        bank_label=BANK_LABEL,
        cascade=lambda w, input: (f"--cascade-scores {' '.join(input.cascade)} --main-captioner {MAIN_CAPTIONER}"
                                  if input.cascade else ""),
        grounded=lambda w, input: f"--grounded-scores {' '.join(input.grounded)}" if input.grounded else "",
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m akb collect-metrics --probe-scores {input.probe} --labels {params.labels:q} "
        "--bank-label {params.bank_label:q} {params.cascade} {params.grounded} --out-dir results/tables > {log} 2>&1"


rule study_figures:
    """Correlations between the bank's categories across models, and ours beside the paper's; with
    the cascade, Figure 2 for this run (probing against cascade accuracy across models)."""
    input:
        "results/tables/metrics_long.csv",
    output:
        **HEADLINE_FIGURES,
        **SCATTER_FIGURES,
        heatmap=report(
            "results/figures/category_correlations_heatmap.png",
            caption="../report/category_correlations.rst",
            category="Figures",
        ),
        heatmap_pdf="results/figures/category_correlations_heatmap.pdf",
        correlations="results/figures/category_correlations.csv",
        comparison=report(
            "results/figures/paper_comparison.png",
            caption="../report/paper_comparison.rst",
            category="Figures",
        ),
        comparison_pdf="results/figures/paper_comparison.pdf",
        comparison_table="results/tables/paper_comparison.csv",
        comparison_md="results/tables/paper_comparison.md",
        comparison_tex="results/tables/paper_comparison.tex",
    log:
        "logs/figures/study_figures.log",
    params:
        resamples=config["figures"]["bootstrap_resamples"],
        seed=config["seed"],
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m akb study-figures --metrics {input} --figures-dir results/figures "
        "--tables-dir results/tables --resamples {params.resamples} --seed {params.seed} > {log} 2>&1"


rule paper_figures:
    """Figures 2 and 3 and Tables 1-3 of the paper, rebuilt from its published numbers; and All That
    Glitters' Table 1, retention curves and item decomposition from its published numbers."""
    output:
        heatmap=report(
            "results/paper/correlations_heatmap.png",
            caption="../report/paper_heatmap.rst",
            category="Paper (published numbers)",
        ),
        heatmap_pdf="results/paper/correlations_heatmap.pdf",
        correlations="results/paper/correlations.csv",
        scatter=report(
            expand("results/paper/scatter_{benchmark}.png", benchmark=["mmau", "mmar"]),
            caption="../report/paper_scatter.rst",
            category="Paper (published numbers)",
        ),
        scatter_pdf=expand("results/paper/scatter_{benchmark}.pdf", benchmark=["mmau", "mmar"]),
        tables=expand(
            "results/paper/{table}.{ext}",
            table=["metrics", "table1_akb2000", "table2_cascade", "table3_grounded"],
            ext=["csv", "md", "tex"],
        ),
        # "All That Glitters Is Not Audio" (akb.report.glitters): Table 1, retention, item decomposition.
        glitters_table1=report(
            "results/paper/glitters/table1.md",
            caption="../report/glitters_table1.rst",
            category="Paper (published numbers)",
        ),
        glitters_figures=report(
            expand("results/paper/glitters/{figure}_figure.png", figure=["retention", "decomposition"]),
            caption="../report/glitters_figures.rst",
            category="Paper (published numbers)",
        ),
        glitters_pdf=expand("results/paper/glitters/{figure}_figure.pdf", figure=["retention", "decomposition"]),
        glitters_tables=expand(
            "results/paper/glitters/{table}.{ext}",
            table=["table1", "text_prior_benchmarks", "retention", "decomposition"],
            ext=["csv", "tex"],
        ),
        glitters_md=expand(
            "results/paper/glitters/{table}.md", table=["text_prior_benchmarks", "retention", "decomposition"]
        ),
    log:
        "logs/figures/paper_figures.log",
    params:
        resamples=config["figures"]["bootstrap_resamples"],
        seed=config["seed"],
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m akb paper-figures --out-dir results/paper --resamples {params.resamples} "
        "--seed {params.seed} > {log} 2>&1"


localrules:
    collect_metrics,
    study_figures,
    paper_figures,
