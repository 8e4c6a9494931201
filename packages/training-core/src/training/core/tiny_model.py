"""A tiny, deterministic BERT built on the spot: fast tests and `--fast` runs with no download.

Its WordPiece vocabulary is a fixed list (printable ASCII, also as continuations, common words and endings), not
learnt, as `WordPieceTrainer` breaks ties differently on every run. Tokenizer and config are cached in a folder named
after a hash of all that shapes them; weights come from a fixed seed, so builds are identical.
"""

from __future__ import annotations

import os
import shutil
import string
import tempfile
from pathlib import Path

import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertForTokenClassification, PretrainedConfig, PreTrainedTokenizerFast

from training.common.atomic import remove_stale_staging
from training.common.cache import cache_folder
from training.common.fingerprint import fingerprint

# The tokenizer's special tokens by role, in vocabulary order.
SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
MODEL_SHAPE = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 512,
}
_WORDS_TEXT = """
the a an and or but if then else of to in on at by for with from about into over after before between under
is are was were be been being have has had do does did will would can could should may might must shall not no
yes all any each every some many more most other such only own same so than too very just also new old first last
i you he she it we they me him her us them my your his its our their this that these those who whom which what
when where why how here there up down out off again further once time year years day days week month today
people person man woman child world life work works worked working job jobs company companies team teams group
name names city country state street road house home office school university college institute department
government business market bank service services system systems data information report reports project
projects product products program programs development research management manager managers director
engineer engineers engineering developer developers software hardware design designer analyst analysis
consultant consulting sales marketing finance financial accounting operations support customer customers client
clients senior junior lead head chief officer president vice assistant associate intern internship contract
experience experienced skills skill education degree bachelor master masters doctor phd diploma certificate
certified certification training course courses languages language english french german spanish polish
python java javascript typescript sql html css linux windows cloud aws azure docker kubernetes git machine
learning deep model models network networks api apis web mobile backend frontend database databases server
servers security testing test tests quality agile scrum communication leadership problem solving teamwork
responsible responsibilities achieved built created developed designed implemented improved increased
reduced led managed maintained migrated delivered launched wrote trained mentored supported analyzed tested
email phone address contact profile summary objective references available upon request linkedin github
january february march april may june july august september october november december present current
monday tuesday wednesday thursday friday saturday sunday morning evening night
john jane smith anna maria peter paul michael david james robert mary linda sarah thomas george william
london paris berlin warsaw madrid rome new york boston chicago seattle tokyo sydney toronto amsterdam dublin
google microsoft amazon apple meta ibm oracle intel siemens bosch nokia spotify netflix uber inc ltd corp llc
group gmbh university of technology institute lab labs said says according told announced reported visited
joined left moved met lives lived born based located near north south east west central united kingdom states
www http https com org net edu gmail outlook yahoo mail
"""
_ENDINGS_TEXT = """
s es ed ing er ers est ly tion tions sion ment ments ness ity al ial ic ical ist ists ism able ible ful less ive
ous ship hood ize ise ized ised ization ary ory ant ent ance ence or ors an ian ians en on in ia ie y ey ow ov
ski ska sky son sen sson berg burg stein man mann ton ford field ley ham wood land ville ing ings th ch sh ck
"""


def tiny_bert_folder(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the tiny BERT's tokenizer and config, built once per content hash under `cache_dir`
    (default `$XDG_CACHE_HOME/training`, else `~/.cache/training`)."""
    root = Path(cache_dir) if cache_dir is not None else cache_folder()
    folder = root / f"tiny-bert-{_content_hash()[:16]}"
    remove_stale_staging(root, "tiny-bert-*")  # what builds killed mid-way left; each later call may find it built
    if _complete(folder):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=root))
    try:
        tokenizer = _build_tokenizer()
        tokenizer.save_pretrained(staging)
        config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **MODEL_SHAPE)
        config.save_pretrained(staging)
        # First writer wins: replacing a concurrent build's folder would break its readers.
        try:
            staging.rename(folder)
        except OSError:
            if not _complete(folder):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def tiny_bert_model(config: PretrainedConfig) -> BertForTokenClassification:
    """A token-classification BERT for `config` with weights drawn from seed 0, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return BertForTokenClassification(config)


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()


def _content_hash() -> str:
    versions = {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__}
    return fingerprint({"vocab": _vocabulary(), "shape": MODEL_SHAPE, **versions})


def _vocabulary() -> list[str]:
    """Specials, characters, continuation characters, whole words, then word endings; no duplicates, fixed order."""
    characters = sorted(set(string.printable) - set(string.whitespace) - set(string.ascii_uppercase))
    pieces = [
        *SPECIAL_TOKENS.values(),
        *characters,
        *(f"##{char}" for char in string.ascii_lowercase + string.digits),
        *_WORDS_TEXT.split(),
        *(f"##{ending}" for ending in _ENDINGS_TEXT.split()),
    ]
    return list(dict.fromkeys(pieces))


def _build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {piece: index for index, piece in enumerate(_vocabulary())}
    backend = Tokenizer(models.WordPiece(vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    sep, cls = SPECIAL_TOKENS["sep_token"], SPECIAL_TOKENS["cls_token"]
    backend.post_processor = processors.BertProcessing((sep, vocab[sep]), (cls, vocab[cls]))
    backend.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        **SPECIAL_TOKENS,
        model_max_length=MODEL_SHAPE["max_position_embeddings"],
    )
