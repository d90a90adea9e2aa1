"""``workbench export NAME --format hf --push-to-hub REPO`` against a local Hub (pytest-httpserver speaking the
Hub's HTTP API: repo info/create, preupload, git-LFS batch + basic upload, tree, commit). No network: the
CLI runs with HF_ENDPOINT at the local server. Xet storage is off (HF_HUB_DISABLE_XET): this server speaks
the git-LFS upload protocol the Hub client falls back to."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from tests.golden_data import oasst_items
from workbench.golden import build_version

from .test_golden_cli import TOOL_VERSION, make_project


class LocalHub:
    """Just enough of the Hub: dataset repos held in memory, files by path."""

    def __init__(self, httpserver: Any, *, fail_create: int | None = None) -> None:
        self.url = httpserver.url_for("").rstrip("/")
        self.repos: dict[str, dict[str, bytes]] = {}
        self.blobs: dict[str, bytes] = {}
        self.fail_create = fail_create
        self.auth: set[str] = set()
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    @staticmethod
    def json(obj: Any, status: int = 200, code: str | None = None) -> Response:
        headers = {"X-Error-Code": code} if code else {}
        return Response(json.dumps(obj), status=status, content_type="application/json", headers=headers)

    def handle(self, request: Request) -> Response:  # noqa: PLR0911 - one branch per endpoint
        path = request.path
        self.auth.add(request.headers.get("authorization", ""))
        if request.method == "POST" and path == "/api/repos/create":
            if self.fail_create:
                return self.json({"error": "You don't have the rights to create a dataset"}, self.fail_create)
            body = request.get_json()
            repo = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
            self.repos.setdefault(repo, {})
            return self.json({"url": f"{self.url}/datasets/{repo}", "name": repo})
        if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)(?:/revision/[^/]+)?", path):
            repo = m.group(1)
            if repo not in self.repos:
                return self.json({"error": "Repository not found"}, 404, "RepoNotFound")
            sha = hashlib.sha1(json.dumps(sorted(self.repos[repo])).encode()).hexdigest()
            siblings = [{"rfilename": f} for f in self.repos[repo]]
            return self.json({"id": repo, "sha": sha, "siblings": siblings, "private": False})
        if re.fullmatch(r"/api/datasets/[^/]+/[^/]+/preupload/[^/]+", path):
            files = request.get_json()["files"]
            modes = [
                {"path": f["path"], "uploadMode": "regular" if f["path"].endswith(".md") else "lfs"} for f in files
            ]
            return self.json({"files": [{**mode, "shouldIgnore": False} for mode in modes]})
        if re.fullmatch(r"/datasets/[^/]+/[^/]+\.git/info/lfs/objects/batch", path):
            objects = request.get_json()["objects"]
            upload = [
                {**o, "authenticated": True, "actions": {"upload": {"href": f"{self.url}/lfs-upload/{o['oid']}"}}}
                for o in objects
            ]
            body = json.dumps({"transfer": "basic", "objects": upload})
            return Response(body, content_type="application/vnd.git-lfs+json")
        if (m := re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path)) and request.method == "PUT":
            data = request.get_data()
            if hashlib.sha256(data).hexdigest() != m.group(1):
                return self.json({"error": "sha256 mismatch"}, 400)
            self.blobs[m.group(1)] = data
            return Response(b"")
        if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tree/[^/]+(?:/(.*))?", path):
            return self.tree(m.group(1), m.group(2) or "")
        if path == "/api/validate-yaml":
            return self.json({"errors": [], "warnings": []})
        if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/commit/([^/]+)", path):
            return self.commit(m.group(1), request.get_data())
        return self.json({"error": f"{path} not found"}, 404, "EntryNotFound")

    def tree(self, repo: str, prefix: str) -> Response:
        entries: dict[str, dict[str, Any]] = {}
        for name, data in self.repos.get(repo, {}).items():
            if prefix and not name.startswith(prefix + "/"):
                continue
            rest = name[len(prefix) + 1 :] if prefix else name
            head = f"{prefix}/{rest.split('/')[0]}" if prefix else rest.split("/")[0]
            if "/" in rest:
                entries[head] = {"type": "directory", "path": head, "oid": "0" * 40}
            else:
                entries[head] = {"type": "file", "path": head, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
        if prefix and not entries:
            return self.json({"error": "not found"}, 404, "EntryNotFound")
        return self.json(list(entries.values()))

    def commit(self, repo: str, payload: bytes) -> Response:
        for line in payload.splitlines():
            op = json.loads(line)
            value = op.get("value") or {}
            if op["key"] == "file":
                self.repos[repo][value["path"]] = base64.b64decode(value["content"])
            elif op["key"] == "lfsFile":
                self.repos[repo][value["path"]] = self.blobs[value["oid"]]
        oid = hashlib.sha1(payload).hexdigest()
        return self.json({"commitUrl": f"{self.url}/datasets/{repo}/commit/{oid}", "commitOid": oid, "success": True})


def hub_env(hub: LocalHub) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_localtest", "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0"}


@pytest.fixture
def project(sqlite_url: str, tmp_path: Path) -> Any:
    p = make_project(sqlite_url, tmp_path)
    build_version(p.cwd, "support", oasst_items(), tool_version=TOOL_VERSION)
    return p


def test_push_to_hub_uploads_what_load_dataset_reads(project: Any, httpserver: Any) -> None:
    datasets = pytest.importorskip("datasets")
    hub = LocalHub(httpserver)
    result = project.run(
        "export",
        "support",
        "--format",
        "hf",
        "--out",
        "support-hf",
        "--push-to-hub",
        "acme/support-golden",
        "--json",
        env=hub_env(hub),
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["stats"]["hub"]["repo_id"] == "acme/support-golden" and out["stats"]["hub"]["commit_url"]
    files = hub.repos["acme/support-golden"]
    assert {"README.md"} < set(files) and any(f.startswith("data/train-") for f in files)
    assert "Bearer hf_localtest" in hub.auth
    local = datasets.load_from_disk(str(project.cwd / "support-hf"))
    for split in ("train", "test"):
        shards = [name for name in files if name.startswith(f"data/{split}-")]
        pushed = Path(project.cwd / f"pushed-{split}.parquet")
        pushed.write_bytes(files[shards[0]])
        remote = datasets.load_dataset("parquet", data_files=str(pushed), split="train")
        assert remote.to_list() == local[split].to_list() and len(remote) > 0
    card = files["README.md"].decode()
    assert "dataset_info:" in card and "split: train" in card and "split: test" in card


def test_push_failure_is_one_line_exit_7_and_keeps_the_local_export(project: Any, httpserver: Any) -> None:
    hub = LocalHub(httpserver, fail_create=403)
    result = project.run(
        "export", "support", "--format", "hf", "--out", "support-hf", "--push-to-hub", "acme/nope", env=hub_env(hub)
    )
    assert result.returncode == 7, (result.stdout, result.stderr)
    error = result.stderr.strip()
    assert "Traceback" not in error and "\n" not in error and "push to the Hub failed for acme/nope" in error
    assert (project.cwd / "support-hf" / "dataset_dict.json").is_file()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("--format", "csv", "--out", "x.csv", "--push-to-hub", "acme/x"), "only apply to --format hf"),
        (("--format", "hf", "--out", "x-hf", "--push-to-hub", "no-namespace"), "NAMESPACE/NAME"),
    ],
)
def test_push_to_hub_bad_input(project: Any, args: tuple[str, ...], match: str) -> None:
    before = sorted(p.name for p in project.cwd.iterdir())
    project.fails(2, "export", "support", *args, match=match)
    assert sorted(p.name for p in project.cwd.iterdir()) == before  # nothing written
