"""`load_dataset`: every format, folders and single files, fingerprints, labels, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from data.columns import Columns
from data.documents import Document, Span
from data.loaders import Dataset, load_dataset
from data.segmentation import split_words
from training.common.errors import DataError, InputError
from training.config import DataConfig
from training.core.decoding import document_predictions
from training.core.features import encode_documents

# Two documents, each as character spans, as tokens with IOB2 tags, and as CoNLL lines.
TEXTS = ["John Smith works at Acme Corp in Paris", "Mary lives in Berlin"]
SPANS = [[[0, 10, "PER"], [20, 29, "ORG"], [33, 38, "LOC"]], [[0, 4, "PER"], [14, 20, "LOC"]]]
TAGS = [["B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG", "O", "B-LOC"], ["B-PER", "O", "O", "B-LOC"]]
KEYS = "'annotations' or 'entities' or 'spans' or 'ents' or 'label'"  # the keys a span record's spans are read from
SHAPES = "[start, end, label], {start, end, label} or {start_offset, end_offset, label}"  # of each span


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def span_records(spans: list[list[list[Any]]] = SPANS) -> list[dict[str, Any]]:
    return [{"text": text, "annotations": annotations} for text, annotations in zip(TEXTS, spans, strict=True)]


def token_records(key: str = "tags", tags: list[list[str]] = TAGS) -> list[dict[str, Any]]:
    return [{"tokens": text.split(), key: row} for text, row in zip(TEXTS, tags, strict=True)]


def conll(tags: list[list[str]] = TAGS) -> str:
    sentences = (
        "".join(f"{token} NNP {tag}\n" for token, tag in zip(text.split(), row, strict=True))
        for text, row in zip(TEXTS, tags, strict=True)
    )
    return "-DOCSTART- -X- O\n\n" + "\n".join(sentences)


def load_error(path: Path, **options: Any) -> str:
    with pytest.raises(DataError) as caught:
        load_dataset(path, **options)
    return str(caught.value)


def one_record(tmp_path: Path, record: Any, name: str = "train.jsonl") -> Path:
    return write(tmp_path / name, '{"text": "ok", "annotations": []}\n' + json.dumps(record) + "\n")


# Formats


def assert_two_documents(dataset: Dataset) -> None:
    assert list(dataset) == ["train"]
    first, second = dataset["train"]
    assert first.text == TEXTS[0]
    assert first.spans == (Span(0, 10, "PER"), Span(20, 29, "ORG"), Span(33, 38, "LOC"))
    assert first.tags == tuple(TAGS[0])
    assert second.spans == (Span(0, 4, "PER"), Span(14, 20, "LOC"))
    assert dataset.labels == ("LOC", "ORG", "PER")


def test_span_json_lines(tmp_path: Path) -> None:
    assert_two_documents(load_dataset(write(tmp_path / "train.jsonl", jsonl(span_records()))))


def test_conll_tokens_holding_punctuation_are_the_words_predict_finds(tmp_path: Path) -> None:
    """`AT&T` was one word in training and evaluation but three for `predict`: evaluate reported F1 1.0 for a model
    whose predictions scored 0.0."""
    path = write(tmp_path / "train.conll", "We O\nmet O\nAT&T B-ORG\nin O\nthe O\nU.S. B-LOC\n\u200b O\n")
    (document,) = load_dataset(path)["train"]
    assert document.words == split_words(document.text)
    assert [word.text for word in document.words][2:9] == ["AT", "&", "T", "in", "the", "U", "."]
    assert document.tags[2:] == ("B-ORG", "I-ORG", "I-ORG", "O", "O", "B-LOC", "I-LOC", "I-LOC", "I-LOC")
    assert document.spans == (Span(7, 11, "ORG"), Span(19, 23, "LOC"))


def test_an_entity_of_invisible_tokens_is_counted_as_a_misaligned_span_is(tmp_path: Path) -> None:
    """As a span covering no word, or one beyond its words by a U+200B: dropped (or refused) and trimmed, counted."""
    path = write(tmp_path / "train.conll", "Anna B-PER\n\u200b B-LOC\n\u200bAcme B-ORG\nleft O\n")
    dataset = load_dataset(path)
    assert dataset["train"][0].spans == (Span(0, 4, "PER"), Span(8, 12, "ORG"))
    assert (dataset.report.misaligned["train"].dropped, dataset.report.spans_trimmed) == (1, 1)
    assert f"{path}:1: [5, 6, 'LOC'] '\\u200b' covers no word, is dropped" in "\n".join(dataset.report.lines())
    assert load_error(path, misaligned_policy="error") == (
        f"{path}:1: [5, 6, 'LOC'] '\\u200b' does not start and end on word edges "
        "(covers no word, is dropped under data.misaligned_policy: expand)"
    )


def test_span_json_array_with_annotation_objects(tmp_path: Path) -> None:
    records = [
        {"id": f"doc-{n}", "text": text, "annotations": [{"start": s, "end": e, "label": lab} for s, e, lab in spans]}
        for n, (text, spans) in enumerate(zip(TEXTS, SPANS, strict=True))
    ]
    dataset = load_dataset(write(tmp_path / "corpus.json", json.dumps(records, indent=2)))
    assert_two_documents(dataset)
    assert [doc.id for doc in dataset["train"]] == ["doc-0", "doc-1"]


@pytest.mark.parametrize("key", ["tags", "ner_tags"])
def test_token_json_lines(tmp_path: Path, key: str) -> None:
    assert_two_documents(load_dataset(write(tmp_path / "train.jsonl", jsonl(token_records(key)))))


def test_a_token_record_with_tags_and_ner_tags_reads_ner_tags_as_datasets_input_does(tmp_path: Path) -> None:
    """`tags` was read, where `datasets` input reads `ner_tags`: the same data gave other entities by its format."""
    pos = [{**record, "ner_tags": record["tags"], "tags": ["NNP"] * len(record["tags"])} for record in token_records()]
    assert_two_documents(load_dataset(write(tmp_path / "train.jsonl", jsonl(pos))))  # part-of-speech `tags` beside
    ids = {"tokens": ["Jo", "Li"], "tags": ["B-PER", "I-PER"], "ner_tags": [1, 2]}
    ids = write(tmp_path / "ids.jsonl", jsonl([ids]))
    assert load_dataset(ids, tag_names=["O", "B-PER", "I-PER"])["train"][0].spans == (Span(0, 5, "PER"),)
    few_nerd = load_dataset(ids, tag_names=["O", "art", "person"])["train"][0]  # names of bare types are IO tags
    assert few_nerd.spans == (Span(0, 2, "art"), Span(3, 5, "person"))
    lower = load_dataset(ids, tag_names=["o", "art", "person"])  # `o` is `O`
    assert (lower.labels, lower["train"][0].spans) == (("art", "person"), few_nerd.spans)
    assert load_error(ids) == (  # `tags` beside may hold anything (part-of-speech tags): never read in their place
        f"{ids}:1: 'ner_tags' holds tag ids; set data.tag_names to the tag names in id order (or write the names)"
    )


def test_lower_case_tags_read_with_their_types_as_written(tmp_path: Path) -> None:
    """`b-per`, `i-per`, `o`, as some corpora and exports spell them, were refused as malformed."""
    lower = [[tag if tag == "O" else tag[0].lower() + tag[1:] for tag in row] for row in TAGS]  # b-PER, O
    lower[1] = [tag.lower() for tag in lower[1]]  # b-per, o
    path = write(tmp_path / "train.conll", conll(lower))
    dataset = load_dataset(path)
    assert [doc.tags for doc in dataset["train"]] == [tuple(TAGS[0]), ("B-per", "O", "O", "B-loc")]
    assert dataset.labels == ("LOC", "ORG", "PER", "loc", "per")
    assert load_dataset(path, labels=["PER", "ORG", "LOC", "per", "loc"]).fingerprint != dataset.fingerprint
    assert dataset.report.scheme == "IOB2"
    assert dataset.report.tags_repaired == dataset.report.tags_converted == 0


@pytest.mark.parametrize("outside", ["O", "o"])
def test_tags_of_bare_types_as_few_nerd_files_write_them_are_io_tags(tmp_path: Path, outside: str) -> None:
    """Few-NERD's own train.txt and dev.txt (`Paris<TAB>person-actor`, `O`) were refused as malformed tags, where its
    `datasets` form, the same names as ClassLabel names, reads as IO tags."""
    bare = [[tag[2:] + "-x" if tag != "O" else outside for tag in row] for row in TAGS]  # PER-x, ORG-x, O
    for name, text, tags in zip(("train.txt", "dev.txt"), TEXTS, bare, strict=True):
        write(tmp_path / "few" / name, "".join(f"{w}\t{t}\n" for w, t in zip(text.split(), tags, strict=True)))
    dataset = load_dataset(tmp_path / "few")
    assert dataset.report.scheme == "IO"
    assert [doc.spans for doc in (*dataset["train"], *dataset["validation"])] == [
        tuple(Span(start, end, f"{label}-x") for start, end, label in spans) for spans in SPANS
    ]
    assert load_dataset(tmp_path / "few", scheme="IO").fingerprint == dataset.fingerprint
    assert load_error(tmp_path / "few", scheme="IOB2").endswith(
        "tag 'PER-x' is malformed; expected 'O' or '<prefix>-<type>' with a prefix of B, I, E, S, L, U or M"
    )


def test_tags_without_a_type_read_as_the_one_type_data_labels_names(tmp_path: Path) -> None:
    """Keyphrase and BioBERT corpora (`Deep<TAB>B`, `learning<TAB>I`, `O`) failed as malformed tags, saying neither that
    the type was missing nor how to give it; the one type in data.labels is theirs (IOB2 or any scheme)."""
    path = write(tmp_path / "train.conll", "Deep\tB\nlearning\tI\nworks\tO\n\nthe\tO\nmodel\tb\n")
    dataset = load_dataset(path, labels=["KEYPHRASE"])
    assert [doc.spans for doc in dataset["train"]] == [(Span(0, 13, "KEYPHRASE"),), (Span(4, 9, "KEYPHRASE"),)]
    assert dataset.labels == ("KEYPHRASE",)
    assert load_dataset(path, labels=["KEYPHRASE"], scheme="IOB2").fingerprint == dataset.fingerprint
    hint = "has no entity type; where all tags are O or a prefix alone (B, I: one type, as keyphrase and BioBERT"
    assert load_error(path).startswith(f"{path}:1: tag 'B' {hint}")
    # Two types in data.labels give a prefix alone no type: the error said "name that type", as if one were named.
    two = load_error(path, labels=["KEYPHRASE", "X"])
    assert "), name that one type alone in data.labels (such as [KEYPHRASE])" in two
    typo = write(tmp_path / "typo.conll", "Paris\tB-PER\nis\tB\n")  # beside typed tags, a prefix alone is no tag
    assert load_error(typo, labels=["PER"]).startswith(f"{typo}:2: tag 'B' {hint}")


def test_data_columns_positions_for_a_json_file_are_refused_unless_a_run_s(tmp_path: Path) -> None:
    """Positions a user gave in data.columns for a JSON file were silently ignored; a run's (trained on a CoNLL file
    with GermEval's tokens: 1, tags: 2, now reading a JSON file) still are."""
    path = write(tmp_path / "train.jsonl", jsonl(token_records()))
    assert load_error(path, columns=Columns(tokens="words", tags=-1)) == (
        f"{path}: data.columns.tags: -1 is a column position; positions apply to CoNLL/TSV files only, and a JSON "
        "file is read by its keys"
    )
    expected = load_dataset(path).fingerprint
    assert load_dataset(path, columns=Columns(tokens=1, tags=2, inherited=True)).fingerprint == expected
    germeval = DataConfig(name="germeval", columns={"tokens": 1, "tags": 2})  # as data/germeval.yaml sets it
    with pytest.raises(DataError, match=r"data.columns.tokens: 1 is a column position; positions apply to CoNLL/TSV"):
        germeval.load(path)
    assert germeval.load(path, inherited=True).fingerprint == expected


def renamed_records(tokens: str = "toks", tags: str = "bio") -> list[dict[str, Any]]:
    return [{tokens: record["tokens"], tags: record["tags"]} for record in token_records()]


@pytest.mark.parametrize("name", ["train.jsonl", "train.json"])
def test_data_columns_name_the_keys_of_json_token_records(tmp_path: Path, name: str) -> None:
    """`columns: {tokens: toks, tags: bio}` was ignored for JSON token files (records of those keys could not be told
    apart from spans); names pick their keys as they pick `datasets` columns, whose usual names are found unnamed."""
    expected = load_dataset(write(tmp_path / "plain.jsonl", jsonl(token_records()))).fingerprint
    dump = json.dumps if name.endswith(".json") else jsonl  # a JSON array, or JSON lines
    path = write(tmp_path / name, dump(renamed_records()))
    assert load_dataset(path, columns=Columns("toks", "bio")).fingerprint == expected
    assert DataConfig(name="odd", columns={"tokens": "toks", "tags": "bio"}).load(path).fingerprint == expected
    usual = write(tmp_path / "usual" / name, dump(renamed_records("words", "labels")))
    assert load_dataset(usual).fingerprint == expected
    assert load_error(path).startswith(f"{path}:1: cannot tell the format: a record needs 'text' (with {KEYS})")


def test_a_json_token_record_lacking_a_named_key_is_refused_naming_it(tmp_path: Path) -> None:
    records = renamed_records()
    records[1] = {"toks": records[1]["toks"], "tags": records[1]["bio"]}
    path = write(tmp_path / "train.jsonl", jsonl(records))
    assert load_error(path, columns=Columns("toks", "bio")) == (
        f"{path}:2: data.columns.tags: no key 'bio'; the record has keys ['tags', 'toks']"
    )
    assert load_error(path, columns=Columns("words")) == (
        f"{path}:1: data.columns.tokens: no key 'words'; the record has keys ['bio', 'toks']"
    )


def test_data_columns_names_for_span_records_are_refused_unless_a_run_s(tmp_path: Path) -> None:
    """Span records are read by their own keys: a user's names for them are refused; a run's (trained on token
    records of other keys, now reading span records or token records of the usual keys) are ignored there."""
    spans = write(tmp_path / "spans" / "train.jsonl", jsonl(span_records()))
    assert load_error(spans, columns=Columns(tags="bio")) == (
        f"{spans}: data.columns.tags: 'bio' names a key of token records; span records are read by their 'text' and "
        f"spans ({KEYS})"
    )
    expected = load_dataset(spans).fingerprint
    assert load_dataset(spans, columns=Columns("toks", "bio", inherited=True)).fingerprint == expected
    tokens = write(tmp_path / "tokens" / "train.jsonl", jsonl(token_records()))
    run = DataConfig(name="odd", columns={"tokens": "toks", "tags": "bio"})
    assert run.load(tokens, inherited=True).fingerprint == load_dataset(tokens).fingerprint == expected
    assert run.load(write(tmp_path / "odd.jsonl", jsonl(renamed_records())), inherited=True).fingerprint == expected


def test_data_columns_positions_apply_to_the_conll_files_of_a_folder_beside_json_ones(tmp_path: Path) -> None:
    """A folder of a CoNLL train file (read by positions) and a JSON lines test file was refused for the positions,
    named on the JSON file; they are refused only where no file of the input takes them, naming the input."""
    mixed = tmp_path / "mixed"
    words = zip(TEXTS[0].split(), TAGS[0], strict=True)
    write(mixed / "train.tsv", "".join(f"{n}\t{token}\tNNP\t{tag}\n" for n, (token, tag) in enumerate(words)))
    write(mixed / "test.jsonl", jsonl(token_records()[1:]))
    dataset = load_dataset(mixed, columns=Columns(tokens=1, tags=3))
    assert [doc.text for doc in dataset["train"]] == TEXTS[:1] and [doc.text for doc in dataset["test"]] == TEXTS[1:]
    json_only = tmp_path / "json"
    write(json_only / "train.jsonl", jsonl(token_records()))
    write(json_only / "test.jsonl", jsonl(token_records()))
    assert load_error(json_only, columns=Columns(tokens=1, tags=3)) == (
        f"{json_only}: data.columns.tokens: 1 is a column position; positions apply to CoNLL/TSV files only, and its "
        "files are JSON, read by their keys"
    )


def test_docstart_records_of_converted_conll_start_groups_not_documents(tmp_path: Path) -> None:
    """CoNLL-2003 converted a sentence per JSON line keeps `-DOCSTART-` as one-token records: each was a document of
    the text '-DOCSTART-' (946 in its train split), and the sentences after it no group."""
    docstart = {"tokens": ["-DOCSTART-"], "tags": ["O"]}
    records = [docstart, *token_records(), docstart, token_records()[0]]
    documents = load_dataset(write(tmp_path / "train.jsonl", jsonl(records)))["train"]
    assert [(doc.text, doc.group) for doc in documents] == [(TEXTS[0], "doc1"), (TEXTS[1], "doc1"), (TEXTS[0], "doc2")]


def test_conll_columns_with_the_tag_last(tmp_path: Path) -> None:
    dataset = load_dataset(write(tmp_path / "train.conll", conll()))
    assert_two_documents(dataset)
    assert [doc.group for doc in dataset["train"]] == ["doc1", "doc1"]


def test_a_token_holding_a_no_break_or_ideographic_space_is_one_entity_of_its_words(
    tmp_path: Path, tiny_tokenizer_and_model: Any
) -> None:
    """Such a token was refused ("contains whitespace") though the CoNLL reader keeps it whole on purpose. Its text
    splits into words as `predict` splits it (`10\u00a0000` is two, as `U.S.` is four), the document is the one of the
    same text and spans, each word has one labelled sub-token, and its entity decodes to the token's text."""
    conll = "M.\u00a0Dupont B-PER\npaie O\n10\u00a0000 B-MONEY\neuros I-MONEY\n\n\u3000 O\n東京\u3000大学 B-ORG\n"
    dataset = load_dataset(write(tmp_path / "train.conll", conll))
    documents = dataset["train"]
    assert [[word.text for word in doc.words] for doc in documents] == [
        ["M", ".", "Dupont", "paie", "10", "000", "euros"],
        ["東", "京", "大", "学"],
    ]
    assert list(documents) == [Document.from_spans(doc.id, doc.text, doc.spans) for doc in documents]
    tag_names, tokenizer = dataset.tag_names, tiny_tokenizer_and_model(dataset.labels)[0]
    for window in encode_documents(documents, tokenizer, tag_names, 64, 16).windows:
        labelled = [(word, label) for word, label in zip(window.word_ids, window.labels, strict=True) if label >= 0]
        assert labelled == [(word, tag_names.index(tag)) for word, tag in enumerate(documents[window.doc_index].tags)]
    gold = {
        i: (np.array([tag_names.index(tag) for tag in doc.tags]), np.ones(len(doc.tags)))
        for i, doc in enumerate(documents)
    }
    decoded = document_predictions(documents, gold, tag_names, range(len(documents)))
    assert [[entity.text for entity in decoded[i].entities] for i in range(2)] == [
        ["M.\u00a0Dupont", "10\u00a0000 euros"],
        ["東京\u3000大学"],
    ]


def test_a_tab_separated_token_holding_a_space_is_refused_not_cut(tmp_path: Path) -> None:
    """'New York<TAB>B-LOC' was read as the token 'New' tagged B-LOC: 'York' was lost without a word."""
    path = write(tmp_path / "train.tsv", "Flights\tO\r\nto \t O\r\nNew York\tB-LOC\r\n")
    assert load_error(path) == f"{path}:3: token 2 ('New York') is empty or contains whitespace"
    path.write_text("Flights\t\tO\r\nto \t O\r\nYork\tB-LOC\r\n", encoding="utf-8")
    assert load_dataset(path)["train"][0].text == "Flights to York"


@pytest.mark.parametrize("bad", ["", " Bob", "Bob ", "a\u2028b", "a\x1cb", "a\tb", "a\x85b", "\ud83d"])
def test_the_first_bad_token_is_named_wherever_it_is(tmp_path: Path, bad: str) -> None:
    """Tokens are checked in one pass over the whole record; the message still names the first bad one."""
    problem = "holds half a surrogate pair" if bad == "\ud83d" else "is empty or contains whitespace"
    tokens = ["Bob", "\u200b", "Oak\u00adwood", bad, "Ann"]  # a zero-width space and a soft hyphen are no spaces
    path = write(tmp_path / "train.jsonl", json.dumps({"tokens": tokens, "tags": ["O"] * 5}) + "\n")
    assert load_error(path) == f"{path}:1: token 3 ({bad!r}) {problem}"
    path.write_text(json.dumps({"tokens": tokens[:3], "tags": ["O"] * 3}) + "\n", encoding="utf-8")
    assert load_dataset(path)["train"][0].text == "Bob \u200b Oak\u00adwood"


def test_half_a_surrogate_pair_is_refused_with_its_line(tmp_path: Path) -> None:
    """JSON written by code that cut a string inside an emoji escapes half of its surrogate pair."""
    spans = write(tmp_path / "spans" / "train.jsonl", '{"text": "Hi Bob \\ud83d", "annotations": [[3, 6, "PER"]]}\n')
    assert load_error(spans) == f"{spans}:1: 'text' holds half a surrogate pair ('\\ud83d' at character 7)"
    tokens = write(tmp_path / "tokens" / "train.jsonl", '{"tokens": ["Bob", "\\ud83d"], "tags": ["B-PER", "O"]}\n')
    assert load_error(tokens) == f"{tokens}:1: token 1 ('\\ud83d') holds half a surrogate pair"


def test_explicit_format_reads_any_suffix(tmp_path: Path) -> None:
    dataset = load_dataset(write(tmp_path / "corpus.data", conll()), format="conll")
    assert_two_documents(dataset)


def test_explicit_format_is_enforced(tmp_path: Path) -> None:
    path = write(tmp_path / "train.jsonl", jsonl(span_records()))
    assert load_error(path, format="tokens") == (
        f"{path}:1: a token record needs one of ['tokens', 'words'] (or the key data.columns names); found keys "
        "['annotations', 'text']"
    )


def test_json_read_as_conll_is_named_json_with_the_format_that_reads_it(tmp_path: Path) -> None:
    """`format="conll"` on JSON lines said '4 columns where line 1 has 6', on a JSON array 'expected a token and a tag
    ... got '['', on one record 'tag '"LOC"]]}' is malformed': none said the file was JSON, or which format reads it."""
    array = json.dumps(span_records(), indent=1)
    for name, content, shown in [
        ("train.jsonl", jsonl(token_records()), "tokens"),
        ("train.json", array, "spans"),
        ("train", jsonl(span_records()[1:]), "spans"),  # no suffix, and one record: a tag '"LOC"]]}'
    ]:
        path = write(tmp_path / name, content)
        assert load_error(path, format="conll") == (
            f"{path}: read as CoNLL (data.format conll), but it looks like JSON ({shown} records): data.format {shown}"
        )
        assert load_dataset(path, format=shown)["train"][-1].text == TEXTS[-1]
    for first in ("[ O", "{ B-PUNCT"):  # a CoNLL file starting with a bracket token reads as before
        assert load_dataset(write(tmp_path / "a.conll", f"{first}\nParis B-LOC\n"), format="conll").labels


def test_unknown_format_and_policy_options(tmp_path: Path) -> None:
    path = write(tmp_path / "train.jsonl", jsonl(span_records()))
    expected = f"{path}: unknown format 'xml'; expected one of auto, spans, tokens, conll, brat, csv"
    assert load_error(path, format="xml") == expected
    assert "unknown overlap_policy 'first'" in load_error(path, overlap_policy="first")
    expected = "expected a text encoding Python reads, such as utf-8, latin-1 or cp1252"
    assert load_error(path, encoding="latin-9x") == f"unknown encoding 'latin-9x'; {expected}"
    assert load_error(path, encoding="base64") == f"unknown encoding 'base64'; {expected}"  # bytes to bytes, no text
    assert load_error(path, encoding="undefined") == f"unknown encoding 'undefined'; {expected}"  # decodes nothing
    for domain_names in ("idna", "punycode"):  # no file's text (idna replaces nothing: an internal error it was)
        assert load_error(path, encoding=domain_names) == f"unknown encoding {domain_names!r}; {expected}"


@pytest.mark.parametrize(
    ("asset", "options", "message"),
    [
        (None, {}, "data_asset: expected a data folder or file (or a datasets object), got NoneType None"),
        (5, {}, "data_asset: expected a data folder or file (or a datasets object), got int 5"),
        ("train.jsonl", {"labels": "PER"}, "labels: expected a list of names, got the string 'PER'"),
        ("train.jsonl", {"tag_names": "O"}, "tag_names: expected a list of names, got the string 'O'"),
        (
            "train.jsonl",
            {"columns": {"tokens": "words"}},
            "columns: expected data.columns.Columns, got dict {'tokens': 'words'}",
        ),
        ("train.jsonl", {"columns": {}}, "columns: expected data.columns.Columns, got dict {}"),
    ],
)
def test_arguments_of_another_type_are_named(tmp_path: Path, asset: Any, options: dict, message: str) -> None:
    """None raised a TypeError naming no argument; labels='PER' was read as the schema P, E, R; a dict of columns was
    an AttributeError, an empty one the default columns."""
    write(tmp_path / "train.jsonl", jsonl(span_records()))
    given = tmp_path / asset if isinstance(asset, str) else asset
    assert load_error(given, **options) == message


def test_record_id_and_group_fields(tmp_path: Path) -> None:
    records = [{"id": 7, "group": "cv-1", **span_records()[0]}, span_records()[1]]
    first, second = load_dataset(write(tmp_path / "train.jsonl", jsonl(records)))["train"]
    assert (first.id, first.group) == ("7", "cv-1")
    assert (second.id, second.group) == ("train-2", None)


# Folders and files


def test_folder_with_train_validation_and_test(tmp_path: Path) -> None:
    write(tmp_path / "data" / "test.conll", conll())
    write(tmp_path / "data" / "train.jsonl", jsonl(span_records()))
    write(tmp_path / "data" / "validation.jsonl", jsonl(token_records()[:1]))
    write(tmp_path / "data" / "README.md", "not a split")
    dataset = load_dataset(tmp_path / "data")
    assert list(dataset) == ["train", "validation", "test"]
    assert {name: len(docs) for name, docs in dataset.items()} == {"train": 2, "validation": 1, "test": 2}
    assert dataset.report.documents == {"train": 2, "validation": 1, "test": 2}
    assert dataset.report.source == str(tmp_path / "data")


@pytest.mark.parametrize(
    "name", ["dev.jsonl", "valid.jsonl", "val.jsonl", "Validation.JSONL", "devel.jsonl", "development.conll"]
)
def test_validation_split_aliases(tmp_path: Path, name: str) -> None:
    """BioBERT's `devel.tsv`, and the `development.conll` of other corpora, were skipped unsaid, as files of no split:
    the run had no validation data."""
    write(tmp_path / "train.jsonl", jsonl(span_records()))
    write(tmp_path / name, conll() if name.endswith(".conll") else jsonl(span_records()))
    assert list(load_dataset(tmp_path)) == ["train", "validation"]


def test_conll_2003_as_distributed(tmp_path: Path) -> None:
    for name in ("eng.train", "eng.testa", "eng.testb"):
        write(tmp_path / name, conll())
    write(tmp_path / "eng.list", "PER John Smith\n")  # the gazetteer beside them is no split
    dataset = load_dataset(tmp_path)
    assert {name: len(docs) for name, docs in dataset.items()} == {"train": 2, "validation": 2, "test": 2}


def test_a_single_file_is_the_train_split(tmp_path: Path) -> None:
    dataset = load_dataset(str(write(tmp_path / "anything.jsonl", jsonl(span_records()))))
    assert list(dataset) == ["train"]
    assert len(dataset) == 1


def test_missing_split_lookup_names_the_splits(tmp_path: Path) -> None:
    dataset = load_dataset(write(tmp_path / "a.jsonl", jsonl(span_records())))
    with pytest.raises(KeyError, match=r"no split 'test'; this dataset has \['train'\]"):
        dataset["test"]


def test_missing_path(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope") == f"{tmp_path / 'nope'}: no such file or folder"


def test_folder_without_a_train_file(tmp_path: Path) -> None:
    """The names it expected left out BioBERT's devel (and development), which name the validation split too."""
    write(tmp_path / "validation.jsonl", jsonl(span_records()))
    assert load_error(tmp_path).startswith(
        f"{tmp_path}: no train file; expected files named train, validation (or dev, devel, development) and test"
    )


def test_split_folders_of_files_are_named_where_no_train_file_is_found(tmp_path: Path) -> None:
    """`train/` and `dev/` folders of CoNLL files said 'no train file' as an empty folder does: a split is one file
    (split folders are brat's layout, of documents), and the error names the folders it found."""
    write(tmp_path / "train" / "a.conll", conll())
    write(tmp_path / "train" / "b.conll", conll())
    write(tmp_path / "dev" / "a.conll", conll())
    assert load_error(tmp_path).endswith(
        "(NER-de-train.tsv, wnut17train.conll); found dev/, train/: a split is one file (join each folder's files into "
        "one)"
    )
    assert load_error(tmp_path / "train").endswith("(NER-de-train.tsv, wnut17train.conll)")  # no split folder there


def test_two_files_for_one_split(tmp_path: Path) -> None:
    write(tmp_path / "train.jsonl", jsonl(span_records()))
    write(tmp_path / "dev.jsonl", jsonl(span_records()))
    write(tmp_path / "validation.conll", conll())
    message = (
        f"{tmp_path}: both dev.jsonl and validation.conll hold the 'validation' split; keep one (move the other out)"
    )
    assert load_error(tmp_path) == message


@pytest.mark.parametrize("content", ["", "\n\n", "[]", '{"text": "  ", "annotations": []}\n'])
def test_empty_split_file(tmp_path: Path, content: str) -> None:
    write(tmp_path / "train.jsonl", jsonl(span_records()))
    test_file = write(tmp_path / "test.jsonl", content)
    assert load_error(tmp_path) == f"{test_file}: the 'test' split has no documents"


def test_unreadable_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "train.jsonl", jsonl(span_records()).encode() + '{"text": "Café"}\n'.encode("latin-1"))
    assert load_error(path).startswith(f"{path}:3: not valid UTF-8 (byte 0xe9 at offset ")


def test_malformed_json_line(tmp_path: Path) -> None:
    path = write(tmp_path / "train.jsonl", jsonl(span_records()) + '{"text": "x", "annotations": [}\n')
    assert load_error(path) == f"{path}:3: invalid JSON: Expecting value (column 31)"


def test_malformed_json_array_element(tmp_path: Path) -> None:
    content = '[\n  {"text": "a", "annotations": []},\n  {"text": "b" "annotations": []}\n]'
    path = write(tmp_path / "train.json", content)
    assert load_error(path) == f"{path}:3: invalid JSON: Expecting ',' delimiter (column 16)"


# Fingerprint and labels


def test_fingerprint_is_equal_across_formats_and_stable(tmp_path: Path) -> None:
    paths = [
        write(tmp_path / "a.jsonl", jsonl(span_records())),
        write(tmp_path / "b.json", json.dumps(span_records())),
        write(tmp_path / "c.jsonl", jsonl(token_records("ner_tags"))),
        write(tmp_path / "d.conll", conll()),
    ]
    fingerprints = {load_dataset(path).fingerprint for path in paths}
    assert len(fingerprints) == 1
    assert load_dataset(paths[0]).fingerprint == fingerprints.pop()
    assert len(load_dataset(paths[0]).fingerprint) == 64


def test_fingerprint_changes_with_one_label(tmp_path: Path) -> None:
    changed = [SPANS[0], [[0, 4, "PER"], [14, 20, "ORG"]]]
    original = load_dataset(write(tmp_path / "a.jsonl", jsonl(span_records())))
    relabelled = load_dataset(write(tmp_path / "b.jsonl", jsonl(span_records(changed))))
    assert original.fingerprint != relabelled.fingerprint


def test_fingerprint_covers_split_membership(tmp_path: Path) -> None:
    write(tmp_path / "one" / "train.jsonl", jsonl(span_records()))
    write(tmp_path / "two" / "train.jsonl", jsonl(span_records()[:1]))
    write(tmp_path / "two" / "test.jsonl", jsonl(span_records()[1:]))
    assert load_dataset(tmp_path / "one").fingerprint != load_dataset(tmp_path / "two").fingerprint


def test_label_inventory_and_tag_names(tmp_path: Path) -> None:
    dataset = load_dataset(write(tmp_path / "a.jsonl", jsonl(span_records())))
    assert dataset.labels == ("LOC", "ORG", "PER")
    assert dataset.tag_names == ("O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    assert "fingerprint=" in repr(dataset)


def test_label_schema_keeps_its_order_and_may_hold_unseen_types(tmp_path: Path) -> None:
    dataset = load_dataset(write(tmp_path / "a.jsonl", jsonl(span_records())), labels=["PER", "LOC", "ORG", "DATE"])
    assert dataset.labels == ("PER", "LOC", "ORG", "DATE")
    assert dataset.tag_names[:3] == ("O", "B-PER", "I-PER")


def test_label_not_in_the_schema_suggests_the_nearest(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", jsonl(span_records()))
    assert load_error(path, labels=["PERSON", "LOC", "ORG"]) == (
        f"{path}:1: label 'PER' is not in the schema (did you mean 'PERSON'?); expected one of ['PERSON', 'LOC', 'ORG']"
    )


def test_tag_label_not_in_the_schema(tmp_path: Path) -> None:
    """A CoNLL tag of a type not in data.labels is named on its own line (7), not on its sentence's first (3)."""
    path = write(tmp_path / "a.conll", conll())
    assert load_error(path, labels=["PER", "LOC", "ORGS"]).startswith(
        f"{path}:7: label 'ORG' is not in the schema (did you mean 'ORGS'?)"
    )
    lower = write(tmp_path / "b.conll", conll([[tag.lower() for tag in row] for row in TAGS]))  # b-per: type `per`
    assert load_error(lower, labels=["PER", "LOC", "ORG"]).startswith(
        f"{lower}:3: label 'per' is not in the schema (did you mean 'PER'? types keep their case)"
    )


def test_dataset_built_in_memory() -> None:
    document = Document.from_spans("d", "Ann", (Span(0, 3, "PER"),))
    dataset = Dataset({"train": [document]})
    assert dataset.labels == ("PER",)
    assert dataset.report.documents == {"train": 1}
    with pytest.raises(DataError, match=r"labels \['PER'\] occur in the data but not in the schema \['LOC'\]"):
        Dataset({"train": [document]}, labels=["LOC"])


def test_a_dataset_built_in_memory_from_what_is_not_splits_of_documents_is_a_data_error() -> None:
    """A list of documents, strings or records failed deep inside; a string of labels was read letter by letter."""
    document = Document.from_spans("d", "Ann", (Span(0, 3, "PER"),))
    expected = r"expected a mapping of split names to lists of Documents, such as \{'train': documents\}"
    with pytest.raises(DataError, match=rf"^splits: {expected}, got list \[Document\(id='d'"):
        Dataset([document])  # type: ignore[arg-type]
    with pytest.raises(DataError, match=rf"^splits: {expected}, got NoneType None$"):
        Dataset(None)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=rf"^splits\['train'\]: {expected}, got Document Document\(id='d'"):
        Dataset({"train": document})  # type: ignore[dict-item]
    with pytest.raises(DataError, match=r"^splits\['train'\]\[1\]: expected a Document .*, got str 'Ann'$"):
        Dataset({"train": [document, "Ann"]})  # type: ignore[list-item]
    with pytest.raises(DataError, match=r"^splits\['test'\]\[0\]: expected a Document .*, got dict \{'tokens'"):
        Dataset({"train": [document], "test": [{"tokens": ["Ann"], "tags": ["B-PER"]}]})  # type: ignore[dict-item]
    with pytest.raises(DataError, match=r"^labels: expected a list of names, got the string 'PER'$"):
        Dataset({"train": [document]}, labels="PER")


# Spans


@pytest.mark.parametrize(
    ("annotation", "problem"),
    [
        ([0, 99, "PER"], " is out of range: the text has 2 characters"),
        ([-1, 1, "PER"], " is out of range: the text has 2 characters"),
        ([2, 1, "PER"], " is inverted or empty: start 2 must be below end 1"),
        ([1, 1, "PER"], " is inverted or empty: start 1 must be below end 1"),
        (["0", 1, "PER"], ": start and end must be integers"),
        ([True, 1, "PER"], ": start and end must be integers"),
        ([0, 1, ""], ": label must be a non-empty string without outer whitespace"),
        ([0, 1, "PER "], ": label must be a non-empty string without outer whitespace"),
        ([0, 1], f" must be {SHAPES}"),
        ({"start": 0, "label": "PER"}, f" must be {SHAPES}"),
        ({"start_offset": 0, "label": "PER"}, f" must be {SHAPES}"),
    ],
)
def test_bad_span(tmp_path: Path, annotation: Any, problem: str) -> None:
    path = one_record(tmp_path, {"text": "ok", "annotations": [annotation]})
    assert load_error(path) == f"{path}:2: annotation {annotation!r}{problem}"


def test_whitespace_around_a_span_is_trimmed_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", jsonl([{"text": "Hi  John Smith .", "annotations": [[3, 15, "PER"]]}]))
    dataset = load_dataset(path)
    (document,) = dataset["train"]
    assert document.spans == (Span(4, 14, "PER"),)
    assert dataset.report.spans_trimmed == 1
    assert "1 span had surrounding whitespace (or invisible marks) trimmed" in dataset.report.lines()


def test_a_byte_order_mark_or_bidi_mark_at_a_span_s_edge_is_trimmed_as_whitespace_is(tmp_path: Path) -> None:
    # Such marks separate words: a span taking one in was refused under misaligned_policy error (expanded otherwise).
    rows = [{"text": "\ufeffJohn Smith\u200f works", "annotations": [[0, 12, "PER"]]}]
    dataset = load_dataset(write(tmp_path / "a.jsonl", jsonl(rows)), misaligned_policy="error")
    assert dataset["train"][0].spans == (Span(1, 11, "PER"),) and dataset.report.spans_trimmed == 1
    # Whitespace and a BOM both trimmed from one span: one span trimmed, not two.
    rows = [{"text": "x \ufeffJohn y", "annotations": [[1, 7, "PER"]]}]
    dataset = load_dataset(write(tmp_path / "b.jsonl", jsonl(rows)), misaligned_policy="error")
    assert dataset["train"][0].spans == (Span(3, 7, "PER"),) and dataset.report.spans_trimmed == 1


def test_whitespace_only_span(tmp_path: Path) -> None:
    path = one_record(tmp_path, {"text": "a   b", "annotations": [[1, 4, "PER"]]})
    assert load_error(path) == f"{path}:2: annotation [1, 4, 'PER'] covers only whitespace"


def test_a_span_whose_offsets_miss_its_own_text_is_refused_and_utf16_offsets_are_named(tmp_path: Path) -> None:
    """Browser tools count UTF-16 units: after two emoji, 'Bo' at [8, 10] was read as ' C' and widened to 'Cy'."""
    text = "\U0001f600\U0001f600 Al Bo Cy"
    utf16 = "; the offsets look like UTF-16 code units: count characters (code points)"
    bo = {"start": 6, "end": 8, "label": "PER", "text": "Bo"}
    path = one_record(tmp_path, {"text": text, "annotations": [bo]})
    assert load_dataset(path)["train"][1].spans == (Span(6, 8, "PER"),)
    path = one_record(tmp_path, {"text": text, "annotations": [{**bo, "start": 8, "end": 10}]})
    assert load_error(path) == f"{path}:2: annotation [8, 10, 'PER'] cuts out ' C', not its text 'Bo'{utf16}"
    path = one_record(tmp_path, {"text": text, "annotations": [{**bo, "start": 11, "end": 13, "text": "Cy"}]})
    assert load_error(path) == f"{path}:2: annotation [11, 13, 'PER'] cuts out '', not its text 'Cy'{utf16}"
    path = one_record(tmp_path, {"text": text, "annotations": [{**bo, "text": "Al"}]})
    assert load_error(path) == f"{path}:2: annotation [6, 8, 'PER'] cuts out 'Bo', not its text 'Al'"


def test_overlapping_spans_are_an_error_by_default(tmp_path: Path) -> None:
    path = one_record(tmp_path, {"text": "John Smith", "annotations": [[5, 10, "PER"], [0, 10, "PER"]]})
    assert load_error(path) == (
        f"{path}:2: annotations [0, 10, 'PER'] and [5, 10, 'PER'] overlap; "
        "fix the data or set data.overlap_policy: keep_longest"
    )


def test_an_annotation_given_twice_is_dropped_and_counted_not_an_overlap(tmp_path: Path) -> None:
    twice = [[0, 10, "PER"], [0, 10, "PER"], {"start": 0, "end": 10, "label": "PER"}]
    record = {"text": "John Smith", "annotations": twice}
    dataset = load_dataset(write(tmp_path / "a.jsonl", jsonl([record])))
    (document,) = dataset["train"]
    assert document.spans == (Span(0, 10, "PER"),)
    assert dataset.report.duplicates_dropped == 2 and dataset.report.overlaps_dropped == 0
    assert "2 duplicate spans dropped (same start, end and label)" in dataset.report.lines()
    path = one_record(tmp_path, {"text": "John Smith", "annotations": [[0, 10, "PER"], [0, 10, "ORG"]]})
    assert "annotations [0, 10, 'ORG'] and [0, 10, 'PER'] overlap" in load_error(path)


def test_overlapping_spans_keep_the_longest_when_asked(tmp_path: Path) -> None:
    record = {"text": "New York City Hall", "annotations": [[0, 8, "LOC"], [4, 18, "ORG"], [9, 13, "LOC"]]}
    dataset = load_dataset(write(tmp_path / "a.jsonl", jsonl([record])), overlap_policy="keep_longest")
    (document,) = dataset["train"]
    assert document.spans == (Span(4, 18, "ORG"),)
    assert dataset.report.overlaps_dropped == 2
    assert "2 overlapping spans dropped (keep_longest)" in dataset.report.lines()


def test_random_spans_give_the_documents_from_spans_builds_of_the_longest_aligned_ones(tmp_path: Path) -> None:
    """Loading skips `from_spans`' second alignment and the overlap scheduling of disjoint spans: on random spans
    (misaligned, duplicated once widened, overlapping or not) the documents are those of that slower path."""
    from random import Random

    from data.documents import align_spans
    from data.overlaps import max_coverage
    from data.segmentation import split_words

    rng = Random(0)
    text = "Dr. Anna-Maria Nowak (ACME Corp.) met Bob at 9:30 in New York City Hall, Zoë said."
    edges = [index for index, char in enumerate(text) if not char.isspace()]  # no span to trim of its whitespace
    records = []
    for _ in range(300):
        pairs = [sorted(rng.sample(edges, 2)) for _ in range(rng.randint(0, 6))]
        records.append({"text": text, "annotations": [[a, b + 1, rng.choice("AB")] for a, b in pairs]})
    dataset = load_dataset(write(tmp_path / "a.jsonl", jsonl(records)), overlap_policy="keep_longest")
    words = split_words(text)
    expected = []
    for record in records:
        given = {Span(*annotation) for annotation in record["annotations"]}
        aligned = [widened for _, widened in align_spans(words, given) if widened is not None]
        expected.append(Document.from_spans("-", text, max_coverage(aligned)))
    assert [(doc.tags, doc.spans) for doc in dataset["train"]] == [(doc.tags, doc.spans) for doc in expected]


def test_report_lists_only_what_happened(tmp_path: Path) -> None:
    dataset = load_dataset(write(tmp_path / "a.jsonl", jsonl(span_records())))
    assert dataset.report.lines() == [f"{tmp_path / 'a.jsonl'}: train: 2 documents"]


def test_empty_documents_are_skipped_and_counted(tmp_path: Path) -> None:
    records = [*span_records(), {"text": " ", "annotations": []}, {"tokens": [], "tags": []}]
    path = write(tmp_path / "a.jsonl", jsonl(records[:3]))
    dataset = load_dataset(path)
    assert len(dataset["train"]) == 2
    assert dataset.report.empty_skipped == 1
    tokens = load_dataset(write(tmp_path / "b.jsonl", jsonl([*token_records(), records[3]])))
    assert tokens.report.empty_skipped == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "is out of range: the text has 0 characters"), (" \n ", "covers only whitespace")],
)
def test_a_blank_text_with_annotations_is_refused_not_skipped_as_empty(tmp_path: Path, text: str, problem: str) -> None:
    """Its annotations were dropped with it, counted as an empty document; they are an error, as on any other text."""
    path = one_record(tmp_path, {"text": text, "annotations": [[0, 3, "PER"]]})
    assert load_error(path) == f"{path}:2: annotation [0, 3, 'PER'] {problem}"


# Tokens and tags


def test_stray_inside_tags_are_repaired_and_counted(tmp_path: Path) -> None:
    iob1 = [["I-PER", "I-PER", "O", "O", "I-ORG", "I-ORG", "O", "I-LOC"], ["I-PER", "O", "O", "B-LOC"]]
    dataset = load_dataset(write(tmp_path / "a.conll", conll(iob1)))
    assert dataset["train"][0].tags == tuple(TAGS[0])
    assert dataset.report.tags_repaired == 4
    assert "4 stray I- tags read as B- (IOB1 to IOB2)" in dataset.report.lines()


def test_inside_tag_of_another_type_starts_an_entity(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", jsonl([{"tokens": ["New", "York"], "tags": ["B-LOC", "I-ORG"]}]))
    dataset = load_dataset(path)
    assert dataset["train"][0].tags == ("B-LOC", "B-ORG")
    assert dataset.report.tags_repaired == 1


@pytest.mark.parametrize("tag", ["X-FOO", "x-FOO", "\u0131-PER", "B-", "PER", "B-PER\r", "I- PER"])  # \u0131: dotless i
def test_malformed_tag(tmp_path: Path, tag: str) -> None:
    path = write(tmp_path / "a.jsonl", jsonl([*token_records(), {"tokens": ["a", "b"], "tags": ["O", tag]}]))
    odd = " ('\u0131' is U+0131, not ASCII)" if tag.startswith("\u0131") else ""  # it looks like the i of i-PER
    assert load_error(path) == (
        f"{path}:3: tag {tag!r} is malformed{odd}; expected 'O' or '<prefix>-<type>' with a prefix of B, I, E, S, L, U "
        "or M"
    )


@pytest.mark.parametrize("scheme", ["auto", "IOB2"])
def test_a_bad_conll_tag_is_named_on_its_own_line(tmp_path: Path, scheme: str) -> None:
    """A malformed tag, or one the scheme does not allow, was named on its sentence's first line, not its own."""
    path = write(tmp_path / "a.conll", "Anna B-PER\nlives O\n\nin O\nthe O\nB- X-FOO\nWest B-\n")
    assert load_error(path, scheme=scheme).startswith(f"{path}:6: tag 'X-FOO' is malformed; expected 'O' or")
    skipped = "1\tAnna\tB-PER\n2-3\tdu\tO\n2\tde\tO\n3\tle\tO\n4\tX\tS-PER\n"  # CoNLL-U: line 2 is no word
    path = write(tmp_path / "b.conll", skipped)
    expected = f"{path}:5: word 3 tag 'S-PER' is not IOB2; its prefixes are B, I"
    assert load_error(path, scheme="IOB2", columns=Columns(1, -1)).startswith(expected)
    path = write(tmp_path / "c.conll", "Anna B-PER\nKarenina E-PER\nread O\nTolstoy B-PER\n")
    assert load_error(path, scheme="BIOES") == (
        f"{path}:4: not valid BIOES: the sequence ends inside an unclosed 'PER' entity (closed by E-)"
    )
    assert "is BIOES but " + f"{path}:4: the sequence ends inside" in load_error(path)


@pytest.mark.parametrize("joined", ["B-PER|I-LOC", "B-geo|O"])
def test_several_tags_joined_in_one_cell_are_refused(tmp_path: Path, joined: str) -> None:
    """`B-PER|B-LOC` (a token in nested entities, as some exports write it) was read as one entity of the type
    'PER|B-LOC'."""
    path = write(tmp_path / "a.conll", f"Paris\tB-LOC\nHilton\t{joined}\n")
    assert load_error(path) == (
        f"{path}:2: tag {joined!r} joins several tags with '|' (a token in nested entities, as some exports write "
        "it); expected one tag per token"
    )
    assert load_error(path, scheme="IOB2").startswith(f"{path}:2: tag {joined!r} joins several tags with '|'")


@pytest.mark.parametrize("tag", ["B-PER|", "B-LOC|GPE", "I-|", "B-|PER"])
def test_a_type_holding_a_bar_is_refused_as_joined_tags_are(tmp_path: Path, tag: str) -> None:
    """`B-geo|O` was refused as joined tags while `B-PER|` (a join cut short) was read as an entity of the type 'PER|':
    no type holds the '|' that joins tags, whatever follows it."""
    path = write(tmp_path / "a.conll", f"Paris\tB-LOC\nHilton\t{tag}\n")
    message = (
        f"{path}:2: tag {tag!r} has '|' in its entity type; '|' joins tags (a token in nested entities, as some "
        "exports write it), and no type holds it: expected one tag per token"
    )
    assert load_error(path) == message
    assert load_error(path, scheme="BIOES") == message


def test_a_bar_in_an_io_type_or_a_span_label_is_refused_as_written(tmp_path: Path) -> None:
    """An IO file's `PER|LOC` was refused as the tag 'I-PER|LOC', which the file does not hold; a span label `LOC|GPE`
    was read while the tag `B-LOC|GPE` is refused: no entity type holds '|'."""
    path = write(tmp_path / "io.conll", "Paris\tPER|LOC\nis\tO\n")
    assert load_error(path).startswith(f"{path}:1: tag 'PER|LOC' has '|' in its entity type;")
    path = write(tmp_path / "spans.jsonl", '{"text": "Paris is", "annotations": [[0, 5, "LOC|GPE"]]}\n')
    assert load_error(path) == (
        f"{path}:1: annotation [0, 5, 'LOC|GPE']: label 'LOC|GPE' has '|', which joins the types of nested entities "
        "(as some exports write them) and no type holds; expected one entity type per annotation"
    )


def test_a_tag_as_a_span_label_is_refused_naming_the_annotation(tmp_path: Path) -> None:
    # Read as entity types, 'O' and 'B-PER' tagged their words 'B-O' and 'B-B-PER'
    for label in ("O", "B-PER"):
        path = write(tmp_path / f"{label}.jsonl", f'{{"text": "Anna is", "annotations": [[0, 4, "{label}"]]}}\n')
        assert load_error(path) == (
            f"{path}:1: annotation [0, 4, '{label}']: label '{label}' is a tag, not an entity type; write types as "
            "'PER', not 'B-PER'"
        )


BIOES = [["B-PER", "E-PER", "O", "O", "B-ORG", "E-ORG", "O", "S-LOC"], ["S-PER", "O", "O", "S-LOC"]]


def test_bioes_conll_is_detected_over_all_splits_and_converted(tmp_path: Path) -> None:
    write(tmp_path / "train.conll", conll(BIOES))
    write(tmp_path / "test.conll", conll([["O"] * 8, ["S-PER", "O", "O", "O"]]))
    dataset = load_dataset(tmp_path)
    assert [doc.tags for doc in dataset["train"]] == [tuple(row) for row in TAGS]
    assert dataset.report.scheme == "BIOES"
    assert "6 BIOES tags converted to IOB2" in dataset.report.lines()
    assert dataset["test"][1].tags == ("B-PER", "O", "O", "O")


def test_bmes_conll_of_chinese_characters_is_detected_and_read_as_spans(tmp_path: Path) -> None:
    # One character per line, as Chinese corpora (such as resume NER data) are written, M- inside an entity.
    path = write(tmp_path / "train.conll", "上 B-LOC\n海 M-LOC\n市 E-LOC\n张 S-NAME\n在 O\n")
    dataset = load_dataset(path)
    assert dataset.report.scheme == "BMES"
    assert [(span.label, dataset["train"][0].text[span.start : span.end]) for span in dataset["train"][0].spans] == [
        ("LOC", "上 海 市"),
        ("NAME", "张"),
    ]


def test_scheme_can_be_set_for_token_jsonl(tmp_path: Path) -> None:
    bilou = [[tag.replace("E-", "L-").replace("S-", "U-") for tag in row] for row in BIOES]
    path = write(tmp_path / "a.jsonl", jsonl(token_records(tags=bilou)))
    iob2 = write(tmp_path / "b.jsonl", jsonl(token_records()))
    assert load_dataset(path, scheme="BILOU").fingerprint == load_dataset(iob2).fingerprint
    assert load_error(path, scheme="BIOES").startswith(f"{path}:1: word 1 tag 'L-PER' is not BIOES")
    assert load_error(path, scheme="BIO") == (
        "unknown tagging scheme 'BIO'; expected auto or one of IOB1, IOB2, BIOES, BILOU, BMES, IO"
    )


def test_tokens_and_tags_length_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", jsonl([{"tokens": ["a", "b", "c"], "ner_tags": ["O", "O"]}]))
    assert load_error(path) == f"{path}:1: 3 tokens but 2 ner_tags; they must pair up"


def test_integer_ner_tags_are_named_by_tag_names_as_datasets_exports_them(tmp_path: Path) -> None:
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    ids = [[names.index(tag) for tag in row] for row in TAGS]
    path = write(tmp_path / "ids.jsonl", jsonl(token_records("ner_tags", ids)))  # type: ignore[arg-type]
    named_file = write(tmp_path / "names.jsonl", jsonl(token_records("ner_tags")))
    named = load_dataset(named_file, labels=["PER", "ORG", "LOC"])  # the types of tag_names, in their order
    assert load_dataset(path, tag_names=names).fingerprint == named.fingerprint
    assert load_error(path) == (
        f"{path}:1: 'ner_tags' holds tag ids; set data.tag_names to the tag names in id order (or write the names)"
    )
    assert load_error(path, tag_names=names[:5]) == (
        f"{path}:1: tag id 5 in 'ner_tags' is not one of 0..4 (['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG'])"
    )
    flags = write(tmp_path / "flags.jsonl", jsonl([{"tokens": ["a", "b"], "ner_tags": [True, False]}]))
    assert load_error(flags, tag_names=names).startswith(f"{flags}:1: ")  # true and false are no tag ids
    typo = [*names[:6], "I-PER"]  # I-LOC written I-PER: "New York" would become a place and a person
    assert load_error(path, tag_names=typo) == (
        f"data.tag_names names 'I-PER' twice; expected one name per tag id, got {typo}"
    )
    spans = [{**record, "tags": [1, 2]} for record in span_records()]  # a span record's own field, not tags
    assert (
        load_dataset(write(tmp_path / "spans.jsonl", jsonl(spans))).fingerprint
        == load_dataset(write(tmp_path / "plain.jsonl", jsonl(span_records()))).fingerprint
    )


@pytest.mark.parametrize("token", ["", "a b", " a"])
def test_token_with_whitespace(tmp_path: Path, token: str) -> None:
    path = write(tmp_path / "a.jsonl", jsonl([{"tokens": ["x", token], "tags": ["O", "O"]}]))
    assert load_error(path) == f"{path}:1: token 1 ({token!r}) is empty or contains whitespace"


def test_tokens_must_be_strings(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", jsonl([{"tokens": ["x", 1], "tags": ["O", "O"]}]))
    assert load_error(path) == f"{path}:1: 'tokens' must be a list of strings"


# Records


def test_non_object_record(tmp_path: Path) -> None:
    path = one_record(tmp_path, ["John", "B-PER"])
    assert load_error(path) == f"{path}:2: expected a JSON object per document, got list"


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (
            {"text": "x"},
            "missing 'annotations' (or 'entities' or 'spans' or 'ents' or 'label'; use [] for a document without "
            "entities)",
        ),
        ({"body": "x"}, f"a span record needs 'text' and spans ({KEYS}); found keys ['body']"),
        ({"text": 3, "annotations": []}, "'text' must be a string, got int"),
        ({"text": "x", "annotations": {"a": 1}}, "'annotations' must be a list of [start, end, label], got dict"),
    ],
)
def test_span_record_missing_or_wrong_keys(tmp_path: Path, record: dict[str, Any], problem: str) -> None:
    path = one_record(tmp_path, record)
    assert load_error(path) == f"{path}:2: {problem}"


def test_token_record_without_tags(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", jsonl([*token_records(), {"tokens": ["x"], "bio": ["O"]}]))
    assert load_error(path) == (
        f"{path}:3: a token record needs one of ['ner_tags', 'tags', 'labels'] beside 'tokens' (or the key "
        "data.columns names); found keys ['bio', 'tokens']"
    )


def test_data_errors_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_dataset(tmp_path / "nope")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("ids", "bad"),
    [([1, 2, 0], None), ([], None), ([1, 5, -1], 5), ([1, -1, 5], -1), ([1, True, 9], True), ([0, 1.0], 1.0)],
)
def test_tag_ids_are_named_in_one_lookup_each_and_the_first_bad_one_is_named(ids: list[Any], bad: Any) -> None:
    from data.hf_datasets import named_tags

    names = ["O", "B-PER", "I-PER"]
    if bad is None:
        assert named_tags("f", 3, "tags", ids, names) == [names[i] for i in ids]
    else:
        with pytest.raises(DataError) as error:
            named_tags("f", 3, "tags", ids, names)
        assert str(error.value) == f"f:3: tag id {bad!r} in 'tags' is not one of 0..2 (['O', 'B-PER', 'I-PER'])"
