"""Hugging Face `datasets` input: objects, save_to_disk folders, Parquet, hub ids; every scheme; without the extra."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from data.columns import Columns
from data.documents import Span
from data.generate import generate_corpus, main, write_corpus, write_saved_dataset
from data.hf_datasets import HubId
from data.loaders import Dataset, load_dataset
from data.schemes import SCHEMES, from_iob2, scheme_tag_names
from training.common.errors import DataError, InputError
from training.config import DataColumns, DataConfig
from training.core.cv_utils import create_kfold_splits

datasets = pytest.importorskip("datasets")

TOKENS = [["John", "Smith", "works", "at", "Acme", "Corp", "in", "Paris"], ["Mary", "lives", "in", "Berlin"]]
TAGS = [["B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG", "O", "B-LOC"], ["B-PER", "O", "O", "B-LOC"]]
TYPES = ["PER", "ORG", "LOC"]


def tagged(
    scheme: str = "IOB2",
    tags: list[list[str]] = TAGS,
    *,
    class_label: bool = True,
    columns: tuple[str, str] = ("tokens", "ner_tags"),
) -> Any:
    """A `Dataset` of TOKENS with integer tags of `scheme`, named by a ClassLabel unless `class_label` is False."""
    tag_names = list(scheme_tag_names(TYPES, scheme))
    label = datasets.ClassLabel(names=tag_names) if class_label else datasets.Value("int64")
    tokens, tag_column = columns
    features = datasets.Features(
        {tokens: datasets.Sequence(datasets.Value("string")), tag_column: datasets.Sequence(label)}
    )
    rows = [[tag_names.index(tag) for tag in from_iob2(row, scheme)] for row in tags]
    return datasets.Dataset.from_dict({tokens: TOKENS, tag_column: rows}, features=features)


def dataset_dict(**splits: Any) -> Any:
    return datasets.DatasetDict(splits or {"train": tagged(), "validation": tagged(tags=TAGS[::-1])})


def jsonl_twin(folder: Path) -> Path:
    """The same documents as our token/tag JSON lines."""
    folder.mkdir()
    for split, tags in (("train", TAGS), ("validation", TAGS[::-1])):
        tokens = TOKENS if split == "train" else TOKENS[::-1]
        lines = [json.dumps({"tokens": t, "tags": g}) for t, g in zip(tokens, tags, strict=True)]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def twin_dict() -> Any:
    train = tagged()
    validation = datasets.Dataset.from_dict(
        {"tokens": TOKENS[::-1], "ner_tags": train["ner_tags"][::-1]}, features=train.features
    )
    return datasets.DatasetDict({"train": train, "validation": validation})


def test_a_dataset_dict_reads_like_our_jsonl_with_the_same_fingerprint(tmp_path: Path) -> None:
    ours = load_dataset(jsonl_twin(tmp_path / "jsonl"), labels=TYPES)  # the ClassLabel's types, in its order
    theirs = load_dataset(twin_dict())
    assert list(theirs) == ["train", "validation"]
    assert [doc.tags for doc in theirs["train"]] == [tuple(row) for row in TAGS]
    assert [(doc.text, doc.spans) for doc in theirs["train"]] == [(doc.text, doc.spans) for doc in ours["train"]]
    assert theirs.fingerprint == ours.fingerprint
    assert theirs.labels == ("PER", "ORG", "LOC")


def test_save_to_disk_and_parquet_read_back_with_the_same_fingerprint(tmp_path: Path) -> None:
    expected = load_dataset(jsonl_twin(tmp_path / "jsonl"), labels=TYPES).fingerprint
    twin_dict().save_to_disk(str(tmp_path / "saved"))
    assert load_dataset(tmp_path / "saved").fingerprint == expected
    (tmp_path / "parquet").mkdir()
    for split, table in twin_dict().items():
        table.to_parquet(str(tmp_path / "parquet" / f"{split}.parquet"))
    assert load_dataset(tmp_path / "parquet").fingerprint == expected
    single = load_dataset(str(tmp_path / "parquet" / "train.parquet"))
    assert list(single) == ["train"]
    assert single.report.source == str(tmp_path / "parquet" / "train.parquet")


def test_parquet_shards_named_as_the_hub_names_them_are_one_split(tmp_path: Path) -> None:
    """`push_to_hub` and hub downloads name files `train-00000-of-00002.parquet`: each stem was taken for a split."""
    expected = load_dataset(jsonl_twin(tmp_path / "jsonl"), labels=TYPES).fingerprint
    (tmp_path / "data").mkdir()
    for split, table in twin_dict().items():
        for shard in range(2):
            file = tmp_path / "data" / f"{split}-0000{shard}-of-00002.parquet"
            table.shard(2, shard, contiguous=True).to_parquet(str(file))
    dataset = load_dataset(tmp_path / "data")
    assert {split: len(documents) for split, documents in dataset.items()} == {"train": 2, "validation": 2}
    assert dataset.fingerprint == expected
    datasets.Dataset.from_dict({"tokens": TOKENS, "ner_tags": TAGS}).to_parquet(str(file))  # string tags, no ClassLabel
    with pytest.raises(DataError, match=r"data: the shards of one split differ: The features can't be aligned"):
        load_dataset(tmp_path / "data")


def test_a_folder_mixing_parquet_and_other_split_files_is_refused(tmp_path: Path) -> None:
    """train.parquet beside validation.jsonl loaded the Parquet file alone: the validation split was dropped unsaid."""
    folder = jsonl_twin(tmp_path / "data")
    (folder / "train.jsonl").unlink()
    twin_dict()["train"].to_parquet(str(folder / "train.parquet"))
    with pytest.raises(DataError, match=r"data: holds Parquet files and validation.jsonl; keep the splits in one"):
        load_dataset(folder)


def test_id_and_group_columns_are_kept_so_folds_keep_a_group_together() -> None:
    """Like a JSON line's fields; the rows' groups were dropped, so the sentences of one article met in two folds."""
    rows = {"id": list("uvwxyz"), "group": ["a", "b", "c"] * 2, "tokens": TOKENS * 3, "ner_tags": TAGS * 3}
    dataset = load_dataset(datasets.Dataset.from_dict(rows))
    assert [(doc.id, doc.group) for doc in dataset["train"]] == list(zip("uvwxyz", "abcabc", strict=True))

    splits = create_kfold_splits(dataset, k=3, stratify=False)

    assert sorted(fold.validation_indices for fold in splits.folds) == [(0, 3), (1, 4), (2, 5)]


def test_docstart_rows_start_groups_as_in_a_conll_file() -> None:
    """A table made from CoNLL-2003 a sentence per row kept `-DOCSTART-` rows as documents of that text."""
    rows = {"tokens": [["-DOCSTART-"], *TOKENS, ["-DOCSTART-"], TOKENS[0]], "ner_tags": [["O"], *TAGS, ["O"], TAGS[0]]}
    documents = load_dataset(datasets.Dataset.from_dict(rows))["train"]
    assert [doc.group for doc in documents] == ["doc1", "doc1", "doc2"]
    assert [doc.tags for doc in documents] == [tuple(TAGS[0]), tuple(TAGS[1]), tuple(TAGS[0])]


def test_a_table_with_ner_tags_and_tags_reads_ner_tags_as_a_json_line_does(tmp_path: Path) -> None:
    """`ner_tags` is read, whatever a `tags` column beside it holds (part-of-speech tags here), in both inputs."""
    table = tagged().add_column("tags", [["NNP"] * len(row) for row in TAGS])
    dataset = load_dataset(table)
    assert [doc.tags for doc in dataset["train"]] == [tuple(row) for row in TAGS]
    rows = zip(TOKENS, TAGS, strict=True)
    lines = [json.dumps({"tokens": tokens, "ner_tags": tags, "tags": ["NNP"] * len(tags)}) for tokens, tags in rows]
    (tmp_path / "train.jsonl").write_text("\n".join(lines), encoding="utf-8")
    assert load_dataset(tmp_path / "train.jsonl", labels=TYPES).fingerprint == dataset.fingerprint


def test_class_label_names_are_the_labels_in_their_order_even_where_no_row_holds_one() -> None:
    """Types came from the rows: a subset without LOC trained a head without it, unlike another subset of the corpus."""
    subset = load_dataset(tagged().select([1]).map(lambda row: {"ner_tags": [1, 0, 0, 0]}))
    assert subset.labels == ("PER", "ORG", "LOC")
    assert subset.tag_names == scheme_tag_names(TYPES, "IOB2")  # the head's ids are the ClassLabel's ids
    assert load_dataset(subset_stream := tagged().select([1]).to_iterable_dataset()).labels == tuple(TYPES)
    assert load_dataset(subset_stream, labels=["LOC", "PER"]).labels == ("LOC", "PER")  # a schema still rules
    strings = datasets.Dataset.from_dict({"tokens": TOKENS, "ner_tags": TAGS})  # plain tags: the types found
    assert load_dataset(strings).labels == ("LOC", "ORG", "PER")


def test_tag_names_declare_the_labels_as_a_class_label_does(tmp_path: Path) -> None:
    """Integer tags named by data.tag_names still took their types from the rows: a subset without LOC lost it."""
    names = list(scheme_tag_names(TYPES, "IOB2"))
    subset = tagged(class_label=False).select([1]).map(lambda row: {"ner_tags": [1, 0, 0, 0]})
    assert load_dataset(subset, tag_names=names).labels == tuple(TYPES)
    (tmp_path / "train.jsonl").write_text(json.dumps({"tokens": TOKENS[1], "ner_tags": [1, 0, 0, 0]}) + "\n")
    assert load_dataset(tmp_path / "train.jsonl", tag_names=names).labels == tuple(TYPES)


def test_a_class_label_name_no_scheme_reads_is_refused_only_where_a_row_uses_it() -> None:
    """Hub datasets name padding or sub-word tags (`X`, `[PAD]`): every ClassLabel name was parsed, and refused."""
    label = datasets.ClassLabel(names=["O", "B-PER", "I-PER", "X"])
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")), "ner_tags": [label]})
    rows = {"tokens": [TOKENS[1]], "ner_tags": [[1, 0, 0, 0]]}
    assert load_dataset(datasets.Dataset.from_dict(rows, features=features)).labels == ("PER",)
    used = datasets.Dataset.from_dict({**rows, "ner_tags": [[1, 0, 0, 3]]}, features=features)
    with pytest.raises(DataError, match="'X' is malformed"):
        load_dataset(used)


def test_a_single_dataset_is_the_train_split_and_dev_test_map_to_ours() -> None:
    assert list(load_dataset(tagged())) == ["train"]
    dataset = load_dataset(datasets.DatasetDict({"test": tagged(), "dev": tagged(), "train": tagged()}))
    assert list(dataset) == ["train", "validation", "test"]


def test_a_file_format_does_not_apply_to_datasets_input() -> None:
    """The rows show their layout: a config of `format: spans` (the demo's) reads a DatasetDict of token rows."""
    assert load_dataset(tagged(), format="spans").fingerprint == load_dataset(tagged()).fingerprint
    assert DataConfig(name="corpus", format="conll").load(tagged()).fingerprint == load_dataset(tagged()).fingerprint


def test_a_plain_dict_of_splits_or_a_datasets_object_for_our_dataset_is_one_line() -> None:
    """The message showed the object's repr, which spans lines for `datasets` objects."""
    with pytest.raises(DataError) as error:
        load_dataset({"train": tagged()})
    assert str(error.value) == (
        "data_asset: expected a data folder or file (or a datasets object), got dict "
        "{'train': Dataset({ features: ['tokens', 'ner_tags'], num_ro"
    )
    with pytest.raises(InputError) as error:
        Dataset.check(dataset_dict())
    assert str(error.value) == (
        "dataset: expected a Dataset (load_dataset(path) or config.data.load()), got DatasetDict "
        "DatasetDict({ train: Dataset({ features: ['tokens', 'ner_tag"
    )


def test_a_streaming_dataset_or_dict_reads_like_the_dataset_it_streams() -> None:
    expected = load_dataset(twin_dict())
    streamed = datasets.IterableDatasetDict({name: split.to_iterable_dataset() for name, split in twin_dict().items()})
    assert load_dataset(streamed).fingerprint == expected.fingerprint
    assert load_dataset(tagged().to_iterable_dataset()).fingerprint == load_dataset(tagged()).fingerprint


def test_a_stream_of_no_rows_is_one_line_naming_its_split() -> None:
    """A stream of unknown features (a generator's, or after `map`) yielding nothing was "none of the columns
    ['tokens', 'words'] found in []; set data.columns.tokens"."""
    nothing = datasets.IterableDataset.from_generator(lambda: iter(()))
    with pytest.raises(DataError) as error:
        load_dataset(datasets.IterableDatasetDict({"train": tagged().to_iterable_dataset(), "test": nothing}))
    assert str(error.value) == "<IterableDatasetDict>[test]: the 'test' split streams no rows"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_each_scheme_is_detected_converted_and_counted(tmp_path: Path, scheme: str) -> None:
    tagged(scheme).save_to_disk(str(tmp_path / scheme))
    dataset = load_dataset(tmp_path / scheme)
    assert [doc.tags for doc in dataset["train"]] == [tuple(row) for row in TAGS]
    # IO and IOB1 read the same way; with no adjacent entities of one type IOB1 data carries no B- at all, and with
    # no entity over two words BMES data carries no M- (it is BIOES, read the same way).
    assert dataset.report.scheme == {"IOB1": "IO", "BMES": "BIOES"}.get(scheme, scheme)
    changed = {"IOB2": 0, "IOB1": 5, "IO": 5, "BIOES": 5, "BILOU": 5, "BMES": 5}[scheme]
    counted = dataset.report.tags_repaired + dataset.report.tags_converted
    assert counted == changed


def test_lower_case_string_tags_are_read_in_any_scheme() -> None:
    """`s-per`, `e-loc` and `o` were refused as malformed; their prefixes tell the scheme as upper-case ones do."""
    rows = [[tag.lower() for tag in from_iob2(row, "BIOES")] for row in TAGS]
    dataset = load_dataset(datasets.Dataset.from_dict({"tokens": TOKENS, "ner_tags": rows}))
    assert dataset.report.scheme == "BIOES"
    assert [doc.tags for doc in dataset["train"]][1] == ("B-per", "O", "O", "B-loc")
    assert dataset.labels == ("loc", "org", "per")


def test_a_set_scheme_is_checked_against_the_data() -> None:
    assert load_dataset(tagged("BIOES"), scheme="BIOES").report.tags_converted == 5
    with pytest.raises(DataError, match=r"^<Dataset>\[train\]:1: word 1 tag 'E-PER' is not IOB2"):
        load_dataset(tagged("BIOES"), scheme="IOB2")


def test_ambiguous_tags_name_the_evidence() -> None:
    rows = [from_iob2(TAGS[0], "BIOES"), ["B-PER", "O", "O", "B-LOC"]]
    words = datasets.Sequence(datasets.Value("string"))
    features = datasets.Features({"tokens": words, "tags": words})
    table = datasets.Dataset.from_dict({"tokens": TOKENS, "tags": rows}, features=features)
    with pytest.raises(DataError) as error:
        load_dataset(table)
    assert str(error.value) == (
        "cannot tell the tagging scheme: <Dataset>[train]:1: word 1 'E-PER' is BIOES but <Dataset>[train]:2: "
        "word 1 'O' follows an unclosed B-/I-PER (closed by E-), which it does not allow; fix the data or set "
        "data.scheme"
    )


def test_integer_tags_without_class_label_need_tag_names() -> None:
    table = tagged(class_label=False)
    with pytest.raises(DataError) as error:
        load_dataset(table)
    assert str(error.value) == (
        "<Dataset>[train]: column 'ner_tags' holds integer tags without a ClassLabel feature; "
        "set data.tag_names to the tag names in id order"
    )
    dataset = load_dataset(table, tag_names=scheme_tag_names(TYPES, "IOB2"))
    assert [doc.tags for doc in dataset["train"]] == [tuple(row) for row in TAGS]
    with pytest.raises(DataError, match=r"^<Dataset>\[train\]:1: tag id 3 in 'ner_tags' is not one of 0\.\.2"):
        load_dataset(table, tag_names=["O", "B-PER", "I-PER"])
    with pytest.raises(DataError, match="differ from the ClassLabel names"):
        load_dataset(tagged(), tag_names=["O", "B-X", "I-X"])


def test_errors_number_rows_from_1_as_the_json_lines_export_numbers_its_lines(tmp_path: Path) -> None:
    """Parquet and `datasets` rows were named from 0 (the second row as ':1'), every other format's lines from 1."""
    names = ["O", "B-PER", "I-PER"]
    table = datasets.Dataset.from_dict({"tokens": [["Jo"], ["Al", "Bo"]], "ner_tags": [[1], [1, 7]]})
    table.to_parquet(tmp_path / "train.parquet")
    table.to_json(tmp_path / "train.jsonl")
    entity = {"start": 0, "end": 9, "label": "PER"}
    spans = datasets.Dataset.from_list([{"text": "Jo", "entities": []}, {"text": "Al", "entities": [entity]}])
    (tmp_path / "spans").mkdir()
    spans.to_parquet(tmp_path / "spans" / "train.parquet")
    spans.to_json(tmp_path / "spans" / "train.jsonl")
    for folder, problem in ((tmp_path, "tag id 7 in 'ner_tags'"), (tmp_path / "spans", f"annotation {entity}")):
        for path in (folder / "train.parquet", folder / "train.jsonl"):
            with pytest.raises(DataError, match=rf"^{re.escape(str(path))}(\[train\])?:2: {re.escape(problem)}"):
                load_dataset(path, tag_names=names)


def test_a_row_s_error_names_its_columns_as_a_json_line_s_names_its_keys(tmp_path: Path) -> None:
    """A row of `words` and `labels` was told of 'tags' (`'tags' must be a list`, `2 tokens but 1 tags`), a key of
    ours the data does not have."""
    for rows, problem in (
        ({"words": [["Al", "Bo"]], "labels": [["B-PER"]]}, "2 tokens but 1 labels; they must pair up"),
        ({"words": [["Al"]], "labels": [[None]]}, "'labels' must be a list of tag names such as 'B-PER'"),
        ({"words": [[None]], "labels": [["O"]]}, "'words' must be a list of strings"),
    ):
        table = datasets.Dataset.from_dict(rows)
        table.to_parquet(tmp_path / "train.parquet")
        table.to_json(tmp_path / "train.jsonl")
        for path in (tmp_path / "train.parquet", tmp_path / "train.jsonl"):
            with pytest.raises(DataError, match=rf"^{re.escape(str(path))}(\[train\])?:1: {re.escape(problem)}"):
                load_dataset(path)


def test_a_span_row_s_error_names_its_entities_column() -> None:
    """Spans beside `text` were told of 'annotations' (`'annotations' must be a list`), whatever their column was
    called: `entities`, or the one data.columns.tags names."""
    for column, tags in (("entities", None), ("mentions", "mentions")):
        bad = datasets.Dataset.from_dict({"text": ["Al"], column: ["PER"]})
        with pytest.raises(DataError, match=rf"^<Dataset>\[train\]:1: '{column}' must be a list of \[start, end, "):
            load_dataset(bad, columns=Columns(tags=tags))
        table = datasets.Dataset.from_dict({"text": ["Al"], column: [[{"start": 0, "end": 2, "label": "PER"}]]})
        assert load_dataset(table, columns=Columns(tags=tags))["train"][0].spans == (Span(0, 2, "PER"),)


@pytest.mark.parametrize("outside", ["O", "o"])  # `o` is `O` wherever tags are read
def test_class_labels_of_bare_types_as_few_nerd_names_them_are_io_tags(outside: str) -> None:
    coarse, fine = [outside, "art", "location", "person"], [outside, "location-GPE", "person-actor"]
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=coarse)),
            "fine_ner_tags": datasets.Sequence(datasets.ClassLabel(names=fine)),
        }
    )
    tokens = [["Paris", "Hilton", "visited", "Paris"]]
    rows = {"tokens": tokens, "ner_tags": [[3, 3, 0, 2]], "fine_ner_tags": [[2, 2, 0, 1]]}
    table = datasets.Dataset.from_dict(rows, features=features)
    for tags, types in (("ner_tags", ("person", "location")), ("fine_ner_tags", ("person-actor", "location-GPE"))):
        dataset = load_dataset(table, columns=Columns(tags=tags))
        assert dataset.report.scheme == "IO"
        document = dataset["train"][0]
        found = [(document.text[span.start : span.end], span.label) for span in document.spans]
        assert found == [("Paris Hilton", types[0]), ("Paris", types[1])]


@pytest.mark.parametrize("names", [["O", "B", "I"], ["O", "B", "I", "E", "S"], ["o", "b", "i"]])
def test_class_labels_of_prefixes_without_types_are_no_io_types(names: list[str]) -> None:
    """BIO without types (`O`, `B`, `I`, as BioBERT's data write them) was read as IO tags of the types B and I; they
    are tags of the one type data.labels names."""
    words = datasets.Sequence(datasets.Value("string"))
    features = datasets.Features({"tokens": words, "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    rows = {"tokens": [["adenomatous", "polyposis", "in", "mice"]], "ner_tags": [[1, 2, 0, 0]]}
    table = datasets.Dataset.from_dict(rows, features=features)
    with pytest.raises(DataError, match=rf"^<Dataset>\[train\]:1: tag '{names[1]}' has no entity type; where all"):
        load_dataset(table)
    (doc,) = load_dataset(table, labels=["Disease"])["train"]
    found = [(doc.text[span.start : span.end], span.label) for span in doc.spans]
    assert found == [("adenomatous polyposis", "Disease")]


@pytest.mark.parametrize("stored", ["list", "sequence"])
def test_text_with_entities_reads_like_span_json_lines(tmp_path: Path, stored: str) -> None:
    texts = ["Anna Nowak lives in Krakow.", "Nobody came."]
    entities = [[{"start": 0, "end": 10, "label": "PER"}, {"start": 20, "end": 26, "label": "LOC"}], []]
    lines = [json.dumps({"text": text, "annotations": spans}) for text, spans in zip(texts, entities, strict=True)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    entity = {"start": datasets.Value("int64"), "end": datasets.Value("int64"), "label": datasets.Value("string")}
    if stored == "sequence":  # `datasets` keeps a Sequence of structs as a struct of lists
        rows = [{key: [span[key] for span in spans] for key in entity} for spans in entities]
        features = datasets.Features({"text": datasets.Value("string"), "entities": datasets.Sequence(entity)})
    else:
        rows, features = entities, datasets.Features({"text": datasets.Value("string"), "entities": [entity]})
    table = datasets.Dataset.from_dict({"text": texts, "entities": rows}, features=features)
    assert load_dataset(table).fingerprint == load_dataset(tmp_path / "train.jsonl").fingerprint
    with pytest.raises(DataError, match=r"none of the columns \['entities', 'annotations'\] found in \['text', 'x'\]"):
        load_dataset(table.rename_column("entities", "x"))
    words = datasets.Dataset.from_dict({"text": ["Jo"], "toks": [["Jo"]], "ner_tags": [["B-PER"]]})
    with pytest.raises(DataError, match=r"none of the columns \['tokens', 'words'\] .*; set data.columns.tokens$"):
        load_dataset(words)


@pytest.mark.parametrize("stored", ["list", "sequence"])
def test_span_labels_named_by_a_class_label_are_its_names_in_its_order(stored: str) -> None:
    """Labels stored as ids of a `ClassLabel` were refused: "label must be a non-empty string"."""
    label = datasets.ClassLabel(names=["ORG", "PER", "LOC"])
    entity = {"start": datasets.Value("int32"), "end": datasets.Value("int32"), "label": label}
    kind = datasets.Sequence(entity) if stored == "sequence" else [entity]
    features = datasets.Features({"text": datasets.Value("string"), "entities": kind})

    def table(spans: list[dict[str, int]]) -> Any:
        """A row of spans; `datasets` keeps a Sequence of structs as a struct of lists."""
        rows = [{key: [span[key] for span in spans] for key in entity}] if stored == "sequence" else [spans]
        text = ["Anna Nowak lives in Krakow."]
        return datasets.Dataset.from_dict({"text": text, "entities": rows}, features=features)

    dataset = load_dataset(table([{"start": 0, "end": 10, "label": 1}, {"start": 20, "end": 26, "label": 2}]))
    assert dataset["train"][0].spans == (Span(0, 10, "PER"), Span(20, 26, "LOC"))
    assert dataset.labels == ("ORG", "PER", "LOC")
    with pytest.raises(DataError) as error:
        load_dataset(table([{"start": 0, "end": 10, "label": -1}]))  # a ClassLabel's missing value
    assert str(error.value) == "<Dataset>[train]:1: tag id -1 in 'entities' is not one of 0..2 (['ORG', 'PER', 'LOC'])"


def test_doccano_s_entities_read_as_its_json_lines_do(tmp_path: Path) -> None:
    """doccano's JSON lines read by `datasets` keep their `entities` of `start_offset` and `end_offset`, which were
    refused as spans of no known shape, as the JSON lines themselves were."""
    entities = [{"label": "PER", "start_offset": 0, "end_offset": 4}]
    record = {"id": 1, "text": "Paul lives in Paris.", "entities": entities}
    (tmp_path / "train.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    table = load_dataset(datasets.Dataset.from_list([record]))
    assert table["train"][0].spans == (Span(0, 4, "PER"),)
    assert table.fingerprint == load_dataset(tmp_path / "train.jsonl").fingerprint


def test_ontonotes_sentences_are_documents_grouped_by_their_document(tmp_path: Path) -> None:
    names = list(scheme_tag_names(TYPES, "IOB2"))
    sentence = {
        "words": datasets.Sequence(datasets.Value("string")),
        "named_entities": datasets.Sequence(datasets.ClassLabel(names=names)),
    }
    features = datasets.Features({"document_id": datasets.Value("string"), "sentences": [sentence]})
    sentences = [
        {"words": tokens, "named_entities": [names.index(tag) for tag in tags]}
        for tokens, tags in zip(TOKENS, TAGS, strict=True)
    ]
    table = datasets.Dataset.from_dict(
        {"document_id": ["nw/a", "nw/b"], "sentences": [sentences, sentences[:1]]}, features=features
    )
    lines = [
        json.dumps({"tokens": t, "tags": g, "group": d})
        for d, t, g in [("nw/a", TOKENS[0], TAGS[0]), ("nw/a", TOKENS[1], TAGS[1]), ("nw/b", TOKENS[0], TAGS[0])]
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = load_dataset(table)
    assert [document.group for document in dataset["train"]] == ["nw/a", "nw/a", "nw/b"]
    assert dataset.fingerprint == load_dataset(tmp_path / "train.jsonl", labels=TYPES).fingerprint
    with pytest.raises(DataError, match=r"^<Dataset>\[train\]: column 'sentences' holds List\(Value\('string'\)\); "):
        load_dataset(datasets.Dataset.from_dict({"sentences": [["John lives in Paris."]]}))
    beside = tagged().add_column("sentences", [["John Smith works"], ["Mary lives"]])  # words there: not nested
    assert load_dataset(beside).fingerprint == load_dataset(tagged()).fingerprint


def test_columns_are_found_or_set() -> None:
    assert len(load_dataset(tagged(columns=("words", "labels")))["train"]) == 2
    odd = tagged(columns=("toks", "bio"))
    with pytest.raises(DataError) as error:
        load_dataset(odd)
    assert str(error.value) == (
        "<Dataset>[train]: none of the columns ['tokens', 'words'] found in ['toks', 'bio']; set data.columns.tokens"
    )
    with pytest.raises(DataError, match=r"data.columns.tags: no column 'tag'; the columns are \['toks', 'bio'\]"):
        load_dataset(odd, columns=Columns("toks", "tag"))
    assert load_dataset(odd, columns=Columns("toks", "bio"))["train"][1].text == "Mary lives in Berlin"
    # A user's positions are refused (they were ignored); a CoNLL run's are ignored, as a datasets run's names are for
    # CoNLL files.
    with pytest.raises(DataError) as error:
        load_dataset(tagged(), columns=Columns(1, "ner_tags"))
    assert str(error.value) == (
        "<Dataset>: data.columns.tokens: 1 is a column position; positions apply to CoNLL/TSV files only, and datasets "
        "input is read by its column names"
    )
    assert load_dataset(tagged(), columns=Columns(1, 2, True)).fingerprint == load_dataset(tagged()).fingerprint
    # A run's names (trained on `odd`) take the columns of that name, else the usual ones, as in JSON token records.
    run = Columns("toks", "bio", inherited=True)
    assert load_dataset(tagged(), columns=run).fingerprint == load_dataset(tagged()).fingerprint
    assert load_dataset(odd, columns=run)["train"][1].text == "Mary lives in Berlin"


def test_unknown_or_duplicate_splits_and_no_train_are_errors() -> None:
    with pytest.raises(DataError, match=r"^<DatasetDict>: split 'extra' is not one of train, validation, valid"):
        load_dataset(dataset_dict(train=tagged(), extra=tagged()))
    with pytest.raises(DataError, match="splits 'validation' and 'dev' both are the 'validation' split"):
        load_dataset(dataset_dict(train=tagged(), validation=tagged(), dev=tagged()))
    with pytest.raises(DataError, match=r"no train split; the dataset has \['test'\]"):
        load_dataset(dataset_dict(test=tagged()))


def test_hub_ids_parse_and_a_missing_one_offline_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HubId.parse("hf://org/name:fr@v1.0") == HubId("org/name", "fr", "v1.0")
    assert HubId.parse("hf://org/name") == HubId("org/name")
    with pytest.raises(DataError, match="not a hub dataset id"):
        HubId.parse("hf://")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as error:
        load_dataset("hf://no-such-org/no-such-dataset")
    message = str(error.value)
    # The error's kind, then its first line, as every other one-line report of a library's error.
    assert re.match(r"hf://no-such-org/no-such-dataset: cannot load the hub dataset \(\w+Error: \S", message)
    assert message.endswith("offline, it must be in the local datasets cache")
    assert "\n" not in message


def test_loading_draws_no_datasets_bar_and_leaves_its_settings_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A hub id (here a folder of Parquet files, as `datasets` reads `org/name` from the working folder) drew
    "Generating train split: ..." on stderr, amid our own output."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "org" / "name").mkdir(parents=True)
    twin_dict()["train"].to_parquet(str(tmp_path / "org" / "name" / "train.parquet"))
    datasets.utils.logging.set_verbosity_warning()
    capfd.readouterr()

    dataset = load_dataset("hf://org/name")

    assert [doc.tags for doc in dataset["train"]] == [tuple(row) for row in TAGS]
    assert capfd.readouterr().err == ""
    assert datasets.utils.logging.is_progress_bar_enabled()
    assert datasets.utils.logging.get_verbosity() == datasets.utils.logging.WARNING


def test_the_generator_writes_a_save_to_disk_folder_in_any_scheme(tmp_path: Path) -> None:
    corpus = generate_corpus(12, seed=3)
    spans = load_dataset(write_corpus(tmp_path / "jsonl", corpus))
    saved = load_dataset(write_saved_dataset(tmp_path / "saved", corpus, "BIOES"))
    assert saved.report.scheme == "BIOES"
    assert {name: len(docs) for name, docs in saved.items()} == {name: len(docs) for name, docs in spans.items()}
    for split in spans:
        entities = Counter(span.label for doc in spans[split] for span in doc.spans)
        assert Counter(span.label for doc in saved[split] for span in doc.spans) == entities


def test_the_generator_writes_an_empty_split_that_reads_back(tmp_path: Path) -> None:
    """`from_list` refused an empty split; `save_to_disk` then wrote it with no data file, which no one could read."""
    saved = write_saved_dataset(tmp_path / "saved", {**generate_corpus(6, seed=1), "test": []})
    splits = datasets.load_from_disk(str(saved))
    assert {name: split.num_rows for name, split in splits.items()} == {"train": 4, "validation": 1, "test": 0}
    assert splits["test"].features == splits["train"].features
    with pytest.raises(DataError) as error:
        load_dataset(saved)
    assert str(error.value) == f"{saved}[test]: the 'test' split has no documents"


def test_the_generator_writing_a_save_to_disk_folder_draws_no_datasets_bar(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`--format datasets` drew a "Saving the dataset" bar per split before its own line."""
    assert main([str(tmp_path / "saved"), "--format", "datasets", "--documents", "6"]) == 0
    assert capfd.readouterr() == (f"wrote {tmp_path / 'saved'}: train 4, validation 1, test 1 documents\n", "")
    assert datasets.utils.logging.is_progress_bar_enabled()


def test_a_split_saved_empty_by_datasets_is_one_line_naming_it(tmp_path: Path) -> None:
    """`save_to_disk` writes an empty split without a data file; loading it was an IndexError (an internal error)."""
    train = tagged()
    datasets.DatasetDict({"train": train, "test": train.select([])}).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DataError) as error:
        load_dataset(tmp_path / "saved")
    assert str(error.value) == (
        f"{tmp_path / 'saved' / 'test'}: an empty split (saved with no data file); drop it or give it rows"
    )


@pytest.mark.parametrize("name", ["dataset_dict.json", "train/state.json", "train/dataset_info.json"])
@pytest.mark.parametrize(("text", "reason"), [("{", "Expecting property name"), ("[" * 100_000, "invalid JSON: nest")])
def test_a_damaged_json_file_of_a_saved_dataset_is_one_line_naming_it(
    tmp_path: Path, name: str, text: str, reason: str
) -> None:
    """`datasets` reads the JSON files `save_to_disk` wrote with no word on which: a damaged one was a JSONDecodeError,
    one nested too deeply a RecursionError (internal errors of the CLI)."""
    twin_dict().save_to_disk(str(tmp_path / "saved"))
    damaged = tmp_path / "saved" / name
    damaged.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=f"^{re.escape(str(damaged))}: not a readable file of a dataset .*{reason}"):
        load_dataset(tmp_path / "saved")


# Without the extra: a meta-path finder makes `datasets` look uninstalled in a fresh interpreter.
BLOCKED_RUN = """
import importlib.abc, json, sys

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("datasets", "pyarrow"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
import data
from data.loaders import load_dataset
"""


def test_without_the_extra_json_loads_and_datasets_input_names_the_install(tmp_path: Path) -> None:
    folder = jsonl_twin(tmp_path / "jsonl")
    twin_dict().save_to_disk(str(tmp_path / "saved"))
    code = BLOCKED_RUN + textwrap.dedent(
        f"""
        print(len(load_dataset({str(folder)!r})["train"]))
        try:
            load_dataset({str(tmp_path / "saved")!r})
        except ImportError as error:
            print(error)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "2",
        "reading Hugging Face datasets input (a Dataset, a save_to_disk folder, Parquet or hf:// id) needs "
        "'datasets', which is not installed: pip install \"training-core[datasets]\"",
    ]


def test_importing_data_and_config_and_loading_json_import_no_datasets(tmp_path: Path) -> None:
    folder = jsonl_twin(tmp_path / "jsonl")
    code = (
        "import sys, data, training.config\n"
        "from data.loaders import load_dataset\n"
        f"load_dataset({str(folder)!r})\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('datasets', 'pyarrow')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_data_config_reads_a_dataset_with_its_columns_tag_names_and_scheme() -> None:
    settings = DataConfig(
        name="corpus",
        scheme="BIOES",
        tag_names=scheme_tag_names(TYPES, "BIOES"),
        columns=DataColumns(tokens="toks", tags="bio"),
    )
    dataset = settings.load(tagged("BIOES", class_label=False, columns=("toks", "bio")))
    assert [doc.tags for doc in dataset["train"]] == [tuple(row) for row in TAGS]
    assert dataset.report.scheme == "BIOES"


def test_plain_parquet_without_datasets_metadata_needs_tag_names(tmp_path: Path) -> None:
    parquet = pytest.importorskip("pyarrow.parquet")
    pyarrow = pytest.importorskip("pyarrow")
    names = list(scheme_tag_names(TYPES, "IOB2"))
    table = pyarrow.table({"words": TOKENS, "labels": [[names.index(tag) for tag in row] for row in TAGS]})
    parquet.write_table(table, tmp_path / "corpus.parquet")
    with pytest.raises(DataError, match=r"holds integer tags without a ClassLabel feature; set data\.tag_names"):
        load_dataset(tmp_path / "corpus.parquet")
    dataset = load_dataset(tmp_path / "corpus.parquet", tag_names=names)
    assert [doc.tags for doc in dataset["train"]] == [tuple(row) for row in TAGS]
