"""A seeded generator of resume-like labelled text, for demos, tests and benchmarks.

`python -m data.generate OUT --documents 300 --seed 7` writes `train.jsonl`, `validation.jsonl` and
`test.jsonl` (character-span JSON lines) into OUT; with `--format datasets` (and `--scheme`) it writes a
Hugging Face `DatasetDict` with `save_to_disk` (words and `ClassLabel` tags) instead.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from data.documents import Document, Span
from data.hf_datasets import quiet_datasets
from data.schemes import SCHEMES, from_iob2, scheme_tag_names
from training.common.arguments import non_empty
from training.common.atomic import atomic_write_text
from training.common.errors import InputError, print_error
from training.common.optional import require

ENTITY_TYPES = ("PERSON", "EMAIL", "PHONE", "SKILL", "COMPANY", "LOCATION", "DEGREE", "DATE")

# Values of each slot, written ", "-separated (a value may hold spaces); FIRST and LAST make a person.
_POOLS = {
    kind: tuple(values.split(", "))
    for kind, values in {
        "FIRST": "Anna, John, Maria, Peter, Sarah, Thomas, Linda, Robert, Olga, David, Fatima, Lucas, Emma, Hiroshi, "
        "Katarzyna, Ahmed, Grace, Mateo, Priya, Jonas, Chloe, Wei, Ines, Omar",
        "LAST": "Kowalczyk, Smith, Garcia, Novak, O'Brien, Muller, Johansson, Nakamura, Ivanova, Okonkwo, Benali, "
        "Oliveira, Thompson, Tanaka, Szczepanska, Al-Mansouri, Hopper, Rossi, Sharma, Lindqvist, Dubois, Zhang, "
        "Fernandes, Haddad",
        "MONTH": "January, February, March, April, May, June, July, August, September, October, November, December",
        "SKILL": "Python, PyTorch, SQL, Kubernetes, Docker, machine learning, data analysis, Java, React, TypeScript, "
        "project management, Spark, statistics, Go, Terraform, natural language processing, C++, Excel, "
        "public speaking, AWS",
        "COMPANY": "Siemens, Google, Microsoft, Spotify, Nokia, Acme Analytics, Bosch, Allegro, Zalando, "
        "Northwind Traders, Contoso Ltd, Initech, Globex Corporation, Deutsche Bank, Volkswagen, Blue Harbor Labs, "
        "Airbus, Toyota",
        "LOCATION": "Warsaw, London, Berlin, Dublin, Krakow, Munich, Seattle, Tokyo, Lisbon, Vienna, New York, "
        "San Francisco, Toronto, Madrid, Sydney, Paris, Amsterdam, Stockholm",
        "DEGREE": "BSc in Computer Science, MSc in Data Science, PhD in Physics, MBA, BA in Economics, "
        "MSc in Electrical Engineering, BEng in Mechanical Engineering, MA in Linguistics",
        "ROLE": "software engineer, data scientist, product manager, analyst, team lead, researcher, consultant, "
        "developer",
    }.items()
}

# A template is text with {TYPE} slots; literal text around them is copied.
_TEMPLATES = (
    "{PERSON}",
    "Name: {PERSON}",
    "Email: {EMAIL} | Phone: {PHONE}",
    "Contact me at {EMAIL} or call {PHONE}.",
    "Based in {LOCATION}.",
    "{ROLE} at {COMPANY} in {LOCATION} from {DATE} to {DATE}.",
    "Worked as a {ROLE} for {COMPANY} ({LOCATION}) since {DATE}.",
    "Joined {COMPANY} in {DATE} as a {ROLE}.",
    "Skills: {SKILL}, {SKILL} and {SKILL}.",
    "Experienced with {SKILL} and {SKILL}.",
    "Education: {DEGREE}, graduated {DATE}.",
    "Holds a {DEGREE} and moved to {LOCATION} in {DATE}.",
    "References available on request.",
    "Led a team of {NUMBER} engineers building tools in {SKILL}.",
    "Reduced costs by {NUMBER} percent using {SKILL}.",
    "Languages: English, Spanish.",
    "{PERSON} is a {ROLE} who enjoys {SKILL}.",
    "Previously interned at {COMPANY}, {LOCATION}.",
)


def _value(kind: str, rng: random.Random, person: tuple[str, str]) -> str:
    first, last = person
    if kind == "PERSON":
        return f"{first} {last}"
    if kind == "EMAIL":
        domain = rng.choice(("example.com", "mail.test", "inbox.example.org"))
        return f"{first.lower()}.{last.lower().replace(chr(39), '')}@{domain}"
    if kind == "PHONE":
        return rng.choice(("+48 {} {} {}", "+1-{}-{}-{}", "({}) {}-{}")).format(
            rng.randint(100, 999), rng.randint(100, 999), rng.randint(1000, 9999)
        )
    if kind == "DATE":
        return rng.choice(
            (
                f"{rng.choice(_POOLS['MONTH'])} {rng.randint(2001, 2024)}",
                str(rng.randint(1998, 2024)),
                f"{rng.randint(1, 12):02d}/{rng.randint(2005, 2024)}",
            )
        )
    if kind == "NUMBER":
        return str(rng.randint(2, 40))
    return rng.choice(_POOLS[kind])


def generate_document(rng: random.Random, sentences: int) -> dict[str, object]:
    """One resume: a person's header, then `sentences` templated sentences, with character-span annotations."""
    person = (rng.choice(_POOLS["FIRST"]), rng.choice(_POOLS["LAST"]))
    templates = [_TEMPLATES[0], _TEMPLATES[2], *(rng.choice(_TEMPLATES[4:]) for _ in range(sentences))]
    text, annotations = "", []
    for template in templates:
        if text:
            text += rng.choice((" ", "\n"))
        rest = template
        while "{" in rest:
            before, _, after = rest.partition("{")
            kind, _, rest = after.partition("}")
            text += before
            value = _value(kind, rng, person)
            if kind in ENTITY_TYPES:
                annotations.append([len(text), len(text) + len(value), kind])
            text += value
        text += rest
    return {"text": text, "annotations": annotations}


def generate_corpus(
    documents: int = 300, *, seed: int = 0, split: Sequence[float] = (0.7, 0.15, 0.15), max_sentences: int = 14
) -> dict[str, list[dict[str, object]]]:
    """`documents` resumes of 1 to `max_sentences` sentences (lengths vary), split into train/validation/test."""
    if documents < 3:
        raise InputError(f"documents: need at least 3 to fill train, validation and test, got {documents}")
    if len(split) != 3 or abs(sum(split) - 1.0) > 1e-9 or min(split) <= 0:
        raise InputError(f"split: expected three positive fractions summing to 1, got {list(split)}")
    if max_sentences < 1:
        raise InputError(f"max_sentences: expected at least 1, got {max_sentences}")
    rng = random.Random(seed)
    corpus = [generate_document(rng, rng.randint(1, max_sentences)) for _ in range(documents)]
    train_end = min(documents - 2, max(1, round(documents * split[0])))  # one document left for each other split
    validation_end = min(documents - 1, max(train_end + 1, round(documents * (split[0] + split[1]))))
    return {
        "train": corpus[:train_end],
        "validation": corpus[train_end:validation_end],
        "test": corpus[validation_end:],
    }


def corpus_files(corpus: dict[str, list[dict[str, object]]]) -> dict[str, str]:
    """The text of each split's `<split>.jsonl`, by file name, as `write_corpus` writes it."""
    return {
        f"{name}.jsonl": "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        for name, records in corpus.items()
    }


def write_corpus(folder: str | Path, corpus: dict[str, list[dict[str, object]]]) -> Path:
    """Write each split as `<split>.jsonl` (atomically) and return the folder."""
    target = Path(folder)
    for name, text in corpus_files(corpus).items():
        atomic_write_text(target / name, text)
    return target


def write_saved_dataset(folder: str | Path, corpus: dict[str, list[dict[str, object]]], scheme: str = "IOB2") -> Path:
    """Write the corpus as a `DatasetDict` folder (`save_to_disk`): `tokens` and `ner_tags` named by a ClassLabel."""
    datasets = require("datasets", "writing a save_to_disk folder")
    names = scheme_tag_names(ENTITY_TYPES, scheme)
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(names))),
        }
    )
    splits = {}
    for split, records in corpus.items():
        rows: dict[str, list[object]] = {"id": [], "tokens": [], "ner_tags": []}
        for index, record in enumerate(records):
            spans = tuple(Span(*annotation) for annotation in record["annotations"])  # type: ignore[attr-defined]
            document = Document.from_spans(f"{split}-{index + 1}", str(record["text"]), spans)
            rows["id"].append(document.id)
            rows["tokens"].append([word.text for word in document.words])
            rows["ner_tags"].append([names.index(tag) for tag in from_iob2(document.tags, scheme, document.id)])
        splits[split] = datasets.Dataset.from_dict(rows, features=features)
    # One shard each: `datasets` writes an empty split as no shard at all, which `load_from_disk` cannot read.
    with quiet_datasets():  # its "Saving the dataset" bars, a line per split before ours
        datasets.DatasetDict(splits).save_to_disk(str(folder), num_shards=dict.fromkeys(splits, 1))
    return Path(folder)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data.generate", description=__doc__.splitlines()[0])
    parser.add_argument("output", type=non_empty(Path), help="folder to write train/validation/test .jsonl files into")
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-sentences", type=int, default=14)
    parser.add_argument(
        "--format", choices=("jsonl", "datasets"), default="jsonl", help="span JSON lines, or a save_to_disk folder"
    )
    parser.add_argument("--scheme", choices=SCHEMES, default="IOB2", help="tagging scheme of --format datasets")
    args = parser.parse_args(argv)
    try:
        corpus = generate_corpus(args.documents, seed=args.seed, max_sentences=args.max_sentences)
    except InputError as error:
        print_error(f"error: {error}")
        return 2
    if args.format == "datasets":
        write_saved_dataset(args.output, corpus, args.scheme)
    else:
        write_corpus(args.output, corpus)
    sizes = ", ".join(f"{name} {len(records)}" for name, records in corpus.items())
    print(f"wrote {args.output}: {sizes} documents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
