import json
import os

# Never wait on a model hub: everything in the tests is built or shipped locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from akb.data.items import MCQItem  # noqa: E402


def make_items(n: int = 10) -> list[MCQItem]:
    """Small varied bank: different question lengths and answer positions."""
    items = []
    for i in range(n):
        choices = (f"option {i} alpha", f"option {i} beta", f"option {i} gamma", f"option {i} delta")
        items.append(
            MCQItem(
                id=f"q{i:02d}",
                question="Which term describes a sound " + "that grows louder " * (i % 4 + 1) + "?",
                choices=choices,
                answer=choices[i % 4],
                category=["Sound", "Music"][i % 2],
                subcategory=["scene", "tempo", "pitch"][i % 3],
            )
        )
    return items


@pytest.fixture
def items() -> list[MCQItem]:
    return make_items()


@pytest.fixture
def bank_file(tmp_path, items):
    path = tmp_path / "bank.jsonl"
    path.write_text("".join(json.dumps(it.to_bank_record()) + "\n" for it in items))
    return path


@pytest.fixture(scope="session")
def tiny_qwen3():
    from akb.models import ModelSpec, load_model

    return load_model(ModelSpec.from_config({"name": "tiny-qwen3", "backend": "tiny", "source": "qwen3"}))
