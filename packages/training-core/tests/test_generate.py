"""The resume generator: seeded corpora whose three splits all hold documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.generate import generate_corpus, main


@pytest.mark.parametrize(("documents", "sizes"), [(3, [1, 1, 1]), (4, [2, 1, 1]), (5, [3, 1, 1]), (20, [14, 3, 3])])
def test_every_split_holds_a_document(documents: int, sizes: list[int]) -> None:
    """The smallest corpora allowed left `test` empty, which `load_dataset` then refused."""
    corpus = generate_corpus(documents, seed=1, max_sentences=2)

    assert [len(corpus[split]) for split in ("train", "validation", "test")] == sizes


def test_a_bad_sentence_count_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "out"), "--max-sentences", "0"]) == 2
    assert capsys.readouterr().err == "error: max_sentences: expected at least 1, got 0\n"
    assert not (tmp_path / "out").exists()


def test_an_empty_output_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `python -m data.generate ""` (an unset shell variable) wrote the corpus into the working directory.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["", "--documents", "5"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith("argument output: expected a path, got an empty string")
    assert list(tmp_path.iterdir()) == []
