"""MMAU-Pro (gamma-lab-umd/MMAU-Pro, `test.parquet`; layout of its official
`evaluate_mmau_pro_comprehensive.py`): a list of clips under `audio_path`, scores per `category`. Its
scorer treats "open" (LLM-judged) and "instruction following" (rule-checked) items apart, and items
with fewer than two choices as open-ended: none of those is multiple choice here."""

from akb.data.formats import BenchmarkFormat, register

register("mmau-pro", BenchmarkFormat(
    audio_key="audio_path", domain_key="category", prediction_key="model_output", subcategory_key="sub-cat",
    clip_list=True, not_mcq=(("open", "open-ended"), ("instruction following", "instruction-following")),
))
