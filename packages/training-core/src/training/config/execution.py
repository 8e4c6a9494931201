"""Typed, frozen records of where final training runs: the backend, and an Azure ML job's settings."""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, model_validator

from training.config.schema import Int, Section

BackendName = Literal["local", "subprocess", "torchrun", "azure"]
BACKENDS: tuple[str, ...] = get_args(BackendName)


def is_local(path: str) -> bool:
    """Whether a data path is a local file or folder (not an `azureml:` asset or a URI)."""
    return not path.startswith("azureml:") and "://" not in path


def _fully(pattern: str, expected: str) -> AfterValidator:
    """A check that a value matches `pattern` whole, so a bad name fails offline rather than in the service."""

    def check(value: str) -> str:
        if re.fullmatch(pattern, value) is None:
            raise ValueError(f"expected {expected}")
        return value

    return AfterValidator(check)


AZURE_ASSET = r"azureml:((//|/subscriptions/).+|\w[\w.-]*([:@][\w.-]+)?)"  # a URI, an asset id, name[:version]
_ENVIRONMENT = _fully(AZURE_ASSET, "a registered environment: azureml:<name>[:<version> or @latest], a URI or an id")
_COMPUTE = _fully(r"[A-Za-z][A-Za-z0-9-]{0,23}", "the name of a compute target (letters, digits and -, a letter first)")
_EXPERIMENT = _fully(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}", "up to 255 letters, digits, _ or -, a letter or digit first")
_IMAGE = _fully(  # Docker's image reference grammar, a little wider in its separators
    r"(?:[\w.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::\w[\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?",
    "a Docker image: [registry/]name[:tag][@sha256:digest], the name in lower case",
)


class AzureConfig(Section):
    """Where and how an Azure ML job runs."""

    subscription_id: str | None = None
    resource_group: str | None = None
    workspace: str | None = None
    compute: Annotated[str, _COMPUTE]
    instance_count: Int = Field(default=1, ge=1)
    processes_per_instance: Int = Field(default=1, ge=1)
    experiment_name: Annotated[str, _EXPERIMENT] = "training"  # the characters Azure ML takes; no space
    image: Annotated[str, _IMAGE] = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"
    data_asset: str | None = Field(default=None, description="azureml:name:version, a datastore URI or a local path")
    environment: Annotated[str, _ENVIRONMENT] | None = Field(default=None, description="default: built from image")


class ExecutionConfig(Section):
    """`execution/<name>.yaml`: the backend that runs final training and its resources."""

    backend: BackendName = "local"
    nproc_per_node: Int = Field(default=1, ge=1)
    azure: AzureConfig | None = None

    @model_validator(mode="after")
    def _azure_needs_settings(self) -> ExecutionConfig:
        if self.backend == "azure" and self.azure is None:
            raise ValueError("backend 'azure' needs an 'azure:' section with at least 'compute'")
        if self.backend in ("local", "subprocess") and self.nproc_per_node != 1:
            raise ValueError(f"nproc_per_node {self.nproc_per_node}: backend {self.backend!r} runs one process")
        return self
