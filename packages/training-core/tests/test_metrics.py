"""Entity-level metrics on word-level IOB2 tags: strict versus lenient, micro versus macro, defined edge cases."""

import json
import random
import subprocess
import sys
import warnings

import pytest
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from data.documents import Word, stray_starts, tags_to_spans
from training.common.errors import InputError
from training.core import compute_metrics
from training.core.metrics import span_metrics


def test_a_stray_inside_run_is_one_entity_in_both_modes_as_predict_reads_it():
    gold = [["B-X", "I-X"]]
    predicted = [["I-X", "I-X"]]

    strict = compute_metrics(gold, predicted)
    lenient = compute_metrics(gold, predicted, mode="lenient")

    assert (strict["entity_precision"], strict["entity_recall"], strict["entity_f1"]) == (1.0, 1.0, 1.0)
    assert strict["repaired_entities"] == 1
    assert (lenient["entity_precision"], lenient["entity_recall"], lenient["entity_f1"]) == (1.0, 1.0, 1.0)
    assert lenient["repaired_entities"] == 0


@pytest.mark.filterwarnings("ignore:Precision and F-score are ill-defined")  # seqeval's own report, for contrast
def test_strict_scores_the_entities_predict_decodes_where_seqeval_drops_a_stray_run():
    words = tuple(Word(text, 2 * index, 2 * index + 1) for index, text in enumerate("abcd"))
    gold = [["B-X", "I-X", "O", "B-Y"]]
    predicted = [["O", "I-X", "O", "B-Y"]]

    # seqeval's strict IOB2 reads no entity from `O I-X`, so its precision ignores that prediction.
    seqeval_report = classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True)
    assert seqeval_report["micro avg"]["precision"] == 1.0

    metrics = compute_metrics(gold, predicted)

    # `predict` returns X over word 1 and Y over word 3; the metric counts exactly those two predictions.
    assert [(span.label, span.start) for span in tags_to_spans(words, predicted[0])] == [("X", 2), ("Y", 6)]
    assert metrics["entity_precision"] == 0.5 and metrics["entity_recall"] == 0.5
    assert metrics["per_entity"]["X"]["precision"] == 0.0
    assert metrics["per_entity"]["Y"]["precision"] == 1.0
    assert metrics["repaired_entities"] == 1


@pytest.mark.filterwarnings("ignore:Precision and F-score are ill-defined")
def test_strict_scores_equal_seqeval_strict_iob2_of_the_repaired_predictions_on_random_tags():
    """Strict entities are read without seqeval: on valid references and predictions whose stray `I-X` are read as
    `B-X` (what `predict` decodes), the scores must be exactly seqeval's strict IOB2 scores of the repaired tags."""
    rng = random.Random(7)
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]

    def repaired(tags: list[str]) -> list[str]:
        strays = set(stray_starts(tags))
        return [f"B-{tag[2:]}" if position in strays else tag for position, tag in enumerate(tags)]

    for _ in range(30):
        gold = [repaired([rng.choice(names) for _ in range(rng.randint(1, 30))]) for _ in range(10)]
        # half of each document right, the rest guessed, stray `I-` tags included
        predicted = [tags[: len(tags) // 2] + [rng.choice(names) for _ in tags[len(tags) // 2 :]] for tags in gold]

        ours = compute_metrics(gold, predicted)
        fixed = [repaired(tags) for tags in predicted]
        theirs = classification_report(gold, fixed, mode="strict", scheme=IOB2, output_dict=True)

        assert ours["entity_f1"] == pytest.approx(theirs["micro avg"]["f1-score"])
        changed = [a != b for tags, done in zip(predicted, fixed, strict=True) for a, b in zip(tags, done, strict=True)]
        assert ours["repaired_entities"] == sum(changed) > 0
        assert set(ours["per_entity"]) == set(theirs) - {"micro avg", "macro avg", "weighted avg"}
        for label, row in ours["per_entity"].items():
            assert (row["precision"], row["recall"]) == pytest.approx(
                (theirs[label]["precision"], theirs[label]["recall"])
            )
            assert row["support"] == theirs[label]["support"]


def test_span_metrics_count_exact_character_spans():
    gold = [[(0, 4, "PER"), (10, 15, "LOC")], []]
    found = [[(0, 4, "PER"), (10, 14, "LOC")], [(1, 2, "ORG")]]

    assert span_metrics(gold, found) == pytest.approx({"span_precision": 1 / 3, "span_recall": 0.5, "span_f1": 0.4})
    with pytest.raises(InputError, match="2 reference documents but 1 predicted"):
        span_metrics(gold, found[:1])


def test_perfect_prediction_scores_one_everywhere():
    tags = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-DATE", "I-DATE", "I-DATE"], ["O"]]

    for mode in ("strict", "lenient"):
        metrics = compute_metrics(tags, tags, mode=mode)
        for key in ("entity_precision", "entity_recall", "entity_f1", "macro_precision", "macro_recall", "macro_f1"):
            assert metrics[key] == 1.0, (mode, key)
        assert metrics["token_accuracy"] == 1.0
        assert metrics["support"] == 3
        assert all(row["f1"] == 1.0 for row in metrics["per_entity"].values())


def test_boundary_error_is_both_a_false_positive_and_a_false_negative():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    predicted = [["B-PER", "O", "O", "B-LOC"]]

    metrics = compute_metrics(gold, predicted)

    # Gold PER(0-2), LOC(3); predicted PER(0-1), LOC(3): 1 hit of 2 predicted and 2 gold.
    assert metrics["entity_precision"] == 0.5
    assert metrics["entity_recall"] == 0.5
    assert metrics["per_entity"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert metrics["per_entity"]["LOC"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}


def test_per_entity_support_sums_to_support():
    gold = [["B-PER", "O", "B-PER", "I-PER"], ["B-LOC", "O", "B-ORG"], ["O", "B-PER"]]
    predicted = [["B-PER", "O", "O", "O"], ["B-LOC", "O", "B-LOC"], ["O", "O"]]

    metrics = compute_metrics(gold, predicted)

    assert metrics["support"] == 5
    assert sum(row["support"] for row in metrics["per_entity"].values()) == 5
    assert {label: row["support"] for label, row in metrics["per_entity"].items()} == {"LOC": 1, "ORG": 1, "PER": 3}


def test_macro_and_micro_differ_on_unbalanced_types():
    gold = [["B-PER", "O", "B-PER"], ["B-PER", "O", "B-LOC"]]
    predicted = [["B-PER", "O", "B-PER"], ["B-PER", "O", "O"]]

    metrics = compute_metrics(gold, predicted)

    # Micro: 3 hits, 3 predicted, 4 gold -> P = 1, R = 3/4, F1 = 2 * 1 * 0.75 / 1.75 = 6/7.
    assert metrics["entity_precision"] == 1.0
    assert metrics["entity_recall"] == 0.75
    assert metrics["entity_f1"] == pytest.approx(6 / 7)
    # Macro: PER scores (1, 1, 1), LOC (0, 0, 0) -> means of 0.5 each.
    assert (metrics["macro_precision"], metrics["macro_recall"], metrics["macro_f1"]) == (0.5, 0.5, 0.5)


def test_token_accuracy_counts_words_over_all_documents():
    gold = [["B-PER", "I-PER", "O", "O"], ["B-LOC", "O"]]
    predicted = [["B-PER", "O", "O", "O"], ["B-LOC", "O"]]

    metrics = compute_metrics(gold, predicted)

    assert metrics["token_accuracy"] == 5 / 6  # not the mean of per-document accuracies (0.875)


def test_agrees_with_seqeval_on_well_formed_predictions():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"], ["B-ORG", "O", "B-PER", "O"], ["O", "B-LOC"]]
    predicted = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "O", "B-ORG", "O"], ["B-PER", "B-LOC"]]

    for mode, options in (("strict", {"mode": "strict", "scheme": IOB2}), ("lenient", {})):
        ours = compute_metrics(gold, predicted, mode=mode)
        theirs = classification_report(gold, predicted, output_dict=True, **options)
        assert ours["entity_f1"] == pytest.approx(theirs["micro avg"]["f1-score"])
        assert ours["macro_f1"] == pytest.approx(theirs["macro avg"]["f1-score"])
        for label, row in ours["per_entity"].items():
            assert row["precision"] == pytest.approx(theirs[label]["precision"])
            assert row["recall"] == pytest.approx(theirs[label]["recall"])
            assert row["support"] == theirs[label]["support"]


def test_empty_input_and_no_gold_entities_give_zeros_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = compute_metrics([], [])
        no_gold = compute_metrics([["O", "O"]], [["B-X", "O"]])
        nothing = compute_metrics([["O"]], [["O"]], mode="lenient")

    assert empty == {
        "entity_precision": 0.0,
        "entity_recall": 0.0,
        "entity_f1": 0.0,
        "macro_precision": 0.0,
        "macro_recall": 0.0,
        "macro_f1": 0.0,
        "token_accuracy": 0.0,
        "support": 0,
        "repaired_entities": 0,
        "per_entity": {},
    }
    assert no_gold["entity_f1"] == 0.0
    assert no_gold["per_entity"] == {"X": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}}
    assert no_gold["token_accuracy"] == 0.5
    assert nothing["entity_f1"] == 0.0
    assert nothing["token_accuracy"] == 1.0


def test_result_is_plain_json():
    metrics = compute_metrics([["B-PER", "O"]], [["B-PER", "B-LOC"]])

    assert json.loads(json.dumps(metrics)) == metrics
    assert all(type(metrics[key]) is float for key in ("entity_f1", "macro_f1", "token_accuracy"))
    assert type(metrics["support"]) is int
    assert all(type(value) in (float, int) for row in metrics["per_entity"].values() for value in row.values())


def test_mismatched_lengths_name_the_document():
    with pytest.raises(InputError, match=r"^document 1: 3 reference tags but 2 predicted tags; they must pair up$"):
        compute_metrics([["O"], ["O", "B-X", "I-X"]], [["O"], ["O", "B-X"]])
    with pytest.raises(InputError, match=r"^2 reference documents but 1 predicted documents; they must pair up$"):
        compute_metrics([["O"], ["O"]], [["O"]])


def test_bad_tags_and_modes_are_input_errors():
    with pytest.raises(InputError, match=r"^predictions\[0\]\[1\]: tag 'PER' is not IOB2; expected 'O', 'B-<type>'"):
        compute_metrics([["O", "O"]], [["O", "PER"]])
    with pytest.raises(InputError, match=r"^references\[0\] is the string 'B-PER'; expected a list of tags"):
        compute_metrics(["B-PER"], [["B-PER"]])
    with pytest.raises(InputError, match=r"^references: expected one list of tags per document, got NoneType None$"):
        compute_metrics(None, None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^predictions\[0\] is NoneType None; expected a list of tags"):
        compute_metrics([["O"]], [None])  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"^mode must be 'strict' or 'lenient', got 'exact'$"):
        compute_metrics([["O"]], [["O"]], mode="exact")  # type: ignore[arg-type]


def test_strict_mode_rejects_invalid_iob2_references_lenient_reads_them():
    gold = [["O", "I-LOC", "I-LOC"]]

    with pytest.raises(InputError, match=r"^references\[0\]\[1\]: 'I-LOC' follows 'O'; strict mode needs valid IOB2"):
        compute_metrics(gold, gold)
    assert compute_metrics(gold, gold, mode="lenient")["entity_f1"] == 1.0


def test_training_and_strict_scoring_do_not_import_scikit_learn():
    """seqeval.metrics imports scikit-learn (about 2 s at each process start: every trial, every evaluate): only
    the lenient mode, which reads entities with it, may load it."""
    code = (
        "import sys\n"
        "import training.core.trainer, training.core.evaluator\n"
        "from training.core import compute_metrics\n"
        "compute_metrics([['B-X', 'O']], [['B-X', 'O']])\n"
        "print('sklearn' in sys.modules)\n"
        "compute_metrics([['B-X', 'O']], [['B-X', 'O']], mode='lenient')\n"
        "print('sklearn' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]
