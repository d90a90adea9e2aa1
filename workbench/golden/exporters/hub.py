"""``--push-to-hub REPO``: the ``hf`` export, uploaded as a Hugging Face Hub dataset repository.

The dataset directory ``export_hf`` wrote is loaded back and pushed with ``datasets``' own
``push_to_hub`` (Parquet shards per split, a README with the dataset card metadata), so what
lands on the Hub is exactly what ``load_dataset(REPO)`` reads. Credentials and server are the
Hub client's usual ones: ``HF_TOKEN`` (or ``huggingface-cli login``) and ``HF_ENDPOINT`` (a
private Hub mirror). A failed push is an ``ExportError`` with one line; the local export stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.errors import ExportError, ValidationError

__all__ = ["check_repo_id", "push_dataset_dir"]


def check_repo_id(repo_id: str) -> None:
    """A bad repository id is bad input, found before anything is written."""
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in repo_id):
        raise ValidationError(f"--push-to-hub needs a repository id as NAMESPACE/NAME, not {repo_id!r}")


def push_dataset_dir(path: str | Path, repo_id: str, *, private: bool | None = None) -> dict[str, Any]:
    """Push a saved dataset directory to ``repo_id`` (a dataset repo, created if missing); returns where it went."""
    check_repo_id(repo_id)
    from datasets import load_from_disk

    dataset = load_from_disk(str(path))
    try:
        commit = dataset.push_to_hub(repo_id, private=private)
    except Exception as exc:  # noqa: BLE001 - the Hub client raises many kinds; one line for the user
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(
            f"push to the Hub failed for {repo_id} ({type(exc).__name__}: {first}); the local export {path} is kept"
        ) from None
    return {"repo_id": repo_id, "commit_url": getattr(commit, "commit_url", None), "oid": getattr(commit, "oid", None)}
