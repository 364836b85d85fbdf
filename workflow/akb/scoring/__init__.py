"""Answer extraction, the official rule, grading of audio benchmarks, statistics and correlations."""
