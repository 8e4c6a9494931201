"""The Azure trial's entry point, which needs no Azure ML SDK: tested where it is not installed too."""

from __future__ import annotations

import pytest

from training.hpo.azure_trial import main


@pytest.mark.parametrize("option", ["--spec", "--data", "--output"])
def test_the_trial_entry_point_refuses_an_empty_path(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    # `--output ""` (an unset shell variable) ran the trial into the working directory.
    args = {"--spec": "spec", "--data": "data", "--output": "out"} | {option: ""}
    with pytest.raises(SystemExit) as exited:
        main([text for pair in args.items() for text in pair])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"{option}: expected a path, got an empty string")
