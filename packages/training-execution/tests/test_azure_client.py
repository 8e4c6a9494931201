"""`MLClientAzure`: the narrow client over `MLClient`, with child-run metrics read from a real MLflow store.

Only the service behind `MLClient` is stood in for (its `jobs`, `workspaces` and `compute` answers); MLflow is real.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("azure.ai.ml")
mlflow = pytest.importorskip("mlflow")

from training.common.errors import ConfigError  # noqa: E402
from training.config import AzureConfig  # noqa: E402
from training.execution.azure_client import (  # noqa: E402
    AzureClient,
    ChildRun,
    MLClientAzure,
    create_azure_client,
    study_reference,
)


class _Jobs:
    def __init__(self, children: list[SimpleNamespace]) -> None:
        self.children, self.downloads = children, []

    def list(self, parent_job_name: str) -> list[SimpleNamespace]:
        assert parent_job_name == "sweep_7"
        return self.children

    def download(self, name: str, *, download_path: str, output_name: str) -> None:
        folder = Path(download_path) / "named-outputs" / output_name
        folder.mkdir(parents=True)
        (folder / "trial.json").write_text("{}")
        self.downloads.append((name, output_name))


def test_child_runs_carry_the_metrics_mlflow_holds(tmp_path: Path) -> None:
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=tracking)
    experiment = client.create_experiment("ner-hpo")
    children = []
    for value, status in ((0.5, "Completed"), (0.7, "Failed")):
        run = client.create_run(experiment).info.run_id  # Azure ML child job names are MLflow run ids
        client.log_metric(run, "entity_f1", value)
        children.append(SimpleNamespace(name=run, status=status))
    workspace = SimpleNamespace(mlflow_tracking_uri=tracking)
    jobs = _Jobs(children)
    service = SimpleNamespace(
        workspace_name="ws-ner", jobs=jobs, workspaces=SimpleNamespace(get=lambda name: workspace)
    )
    azure = MLClientAzure(service)

    assert isinstance(azure, AzureClient) and azure.workspace == "ws-ner"
    assert azure.child_runs("sweep_7") == [
        ChildRun(name=children[0].name, status="Completed", metrics={"entity_f1": 0.5}),
        ChildRun(name=children[1].name, status="Failed", metrics={"entity_f1": 0.7}),
    ]
    folder = azure.download_output(children[0].name, "trial", tmp_path / "down")
    assert folder == tmp_path / "down" / "named-outputs" / "trial" and (folder / "trial.json").is_file()
    assert jobs.downloads == [(children[0].name, "trial")]


def test_one_factory_takes_an_ml_client_or_an_azure_client() -> None:
    azure = AzureConfig(subscription_id="sub", resource_group="rg", workspace="ws", compute="c")
    made = create_azure_client(azure)
    assert isinstance(made, MLClientAzure) and made.workspace == "ws"
    assert create_azure_client(azure, made) is made
    assert isinstance(create_azure_client(azure, made.ml_client), MLClientAzure)
    with pytest.raises(ConfigError, match=r"^ml_client: expected an MLClient or an AzureClient, got str"):
        create_azure_client(azure, "ws")
    assert (
        study_reference(azure, "ws", "sweep_7")
        == "azureml://subscriptions/sub/resourceGroups/rg/workspaces/ws/jobs/sweep_7"
    )
