"""Credentials out of URLs, before a URL is logged, stored or shown (storage URLs, data URIs)."""

from __future__ import annotations

import re

from training.common.errors import ConfigError, InputError

REDACTED = "***"
# The password runs to the first `@`, as SQLAlchemy reads it (`/`, `?`, `#` or a space in it taken as written), unless
# it reads as a port and a path (`https://host:8443/v1@2024/x`); `hf://name:config@revision` names a dataset.
_USERINFO_PASSWORD = re.compile(r"(?P<head>(?<!hf)://[^/@:\s]*):(?P<secret>(?!\d*[/?#\s])[^@]*)@")
_SECRET_PARAMETER = re.compile(
    r"(?P<head>(?:^|[?&;\s])[\w.-]*(?:pass(?:word|wd)?|pwd|secret|token|sig|signature|credential|key)[\w.-]*=)"
    r"(?P<secret>[^&;\s#]*)",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """`url` with its password and secret-looking query values (password, token, sig, key, ...) replaced by ***."""
    redacted = _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}:{REDACTED}@", url)
    return _SECRET_PARAMETER.sub(lambda m: m["head"] + (REDACTED if m["secret"] else ""), redacted)


def refuse_credentials(url: str, what: str) -> None:
    """A `ConfigError` where `url` carries a password or a secret-looking query value (a SAS token), which the files
    that record `what` would hold in clear."""
    if redact_url(url) != url:
        raise ConfigError(
            f"{what} {redact_url(url)!r}: carries a credential (a SAS token or a password), which the job's files "
            "would hold; register the data as a datastore or data asset and give its azureml: name or URI"
        )


def refuse_redacted(url: str | None, what: str, lost: str, argument: str) -> None:
    """An `InputError` where `url`, read back from a record, had its password redacted (`lost` says where): it must
    be given again as `argument`."""
    if url is not None and REDACTED in url:
        raise InputError(f"{what} {url!r}: {lost}; pass the full URI as {argument} (--mlflow-uri URI)")
