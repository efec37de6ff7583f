"""Operations: the embedded store migrates into a Qdrant collection unchanged, and the deploy
files (compose, systemd, site settings) agree with the settings code and the production preset.

Docker and GPUs are not available here, so the deploy files are loaded and cross-checked
instead of run: every ``CQA_*`` variable is a real setting, the site file validates, the
llama.cpp server flags parse with the installed server's own parser and equal what the app
would pass to llama.cpp in-process for the preset.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.schema import UNRESTRICTED, SearchFilter
from retrieval.store.base import DENSE, INTEGER_FIELDS, KEYWORD_FIELDS, SPARSE
from settings import Settings, load_settings
from settings.model import StoreSettings
from settings.strict import COMMAND_VARIABLES, setting_path, unknown_keys
from tests.conftest import EN_MD, REPO, make_container
from tests.helpers import run_cli

DEPLOY = REPO / "deploy"
OPERATIONS_MD = REPO / "docs" / "operations.md"
PRODUCTION_PRESET = "qwen3-32b-2x4090-128k"

RESTRICTED_MD = """# Compliance Desk Handbook

## 1. Escalation hotline

Compliance officers escalate a confirmed sanctions match through the Blue Heron hotline,
extension 4417, within thirty minutes, and record the escalation code in the case file.

## 2. Case file retention

Closed sanctions case files are kept in the restricted archive for ten years.
"""
RESTRICTED_QUERY = "Which hotline extension do compliance officers use to escalate a sanctions match?"
PUBLIC_QUERY = "What is the limit for accepting gifts from customers?"
BRANCH = SearchFilter(access_groups=("branch",))
COMPLIANCE = SearchFilter(access_groups=("compliance",))


# --- migration -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def edge_data(tmp_path_factory) -> Path:
    """A data dir whose embedded store holds the English sample (public) and a small
    handbook visible to the ``compliance`` group only."""
    from ingest.service import IngestOptions

    root = tmp_path_factory.mktemp("ops")
    restricted = root / "compliance_desk_handbook.md"
    restricted.write_text(RESTRICTED_MD, encoding="utf-8")
    data = root / "data"
    container = make_container(data)
    try:
        assert not container.ingest.ingest([EN_MD]).failed
        report = container.ingest.ingest([restricted], IngestOptions(access=("compliance",), doc_type="manual"))
        assert not report.failed, report
    finally:
        container.close()
    return data


class SpyClient:
    """A qdrant-client stand-in that records how the collection is created (local mode
    ignores shard_number, replication_factor and payload indexes, a server does not)."""

    def __init__(self, client) -> None:
        self._client = client
        self.created: dict = {}
        self.indexes: dict[str, str] = {}

    def create_collection(self, name, **kwargs):
        self.created = {"name": name, **kwargs}
        return self._client.create_collection(name, **kwargs)

    def create_payload_index(self, name, field, schema, **kwargs):
        self.indexes[field] = str(getattr(schema, "value", schema))
        return self._client.create_payload_index(name, field, schema, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def _edge_points(store_dir: Path) -> dict[str, dict]:
    import qdrant_edge

    from retrieval.migrate import stored_dim
    from retrieval.store.edge_store import EdgeStore

    store = EdgeStore(store_dir, stored_dim(store_dir))
    try:
        records, _ = store._shard.scroll(qdrant_edge.ScrollRequest(limit=10_000, with_payload=True, with_vector=True))
        return {
            str(r.id): {
                "payload": r.payload,
                "dense": np.asarray(r.vector[DENSE], dtype=np.float32),
                "sparse": dict(zip(r.vector[SPARSE].indices, r.vector[SPARSE].values, strict=True)),
            }
            for r in records
        }
    finally:
        store.close()


def ranked(hits) -> list[tuple[float, str]]:
    """Fused scores and chunk ids, ties in id order (RRF gives equal scores to mirrored ranks)."""
    return sorted((-round(h.score, 6), h.chunk_id) for h in hits)


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant")
def test_migrate_copies_every_point_and_searches_the_same(edge_data: Path):
    from qdrant_client import QdrantClient

    from retrieval.migrate import migrate
    from retrieval.service import RetrievalService
    from retrieval.store.qdrant_store import QdrantStore

    store_dir = edge_data / "store"
    source = _edge_points(store_dir)
    n = len(source)
    assert n > 10
    client = SpyClient(QdrantClient(location=":memory:"))
    target_settings = StoreSettings(backend="qdrant", collection="chunks_v1", shard_number=3, replication_factor=2)

    report = migrate(store_dir, client, batch=7, store_settings=target_settings)
    assert report.ok, report.problems
    assert (report.source_points, report.copied, report.target_points) == (n, n, n)
    assert report.batches == math.ceil(n / 7) and report.target_points_before == 0
    assert report.source_active == report.target_active == n

    # The collection was created the way QdrantStore creates it, with the settings' cluster layout.
    created = client.created
    assert created["name"] == "chunks_v1"
    assert (created["shard_number"], created["replication_factor"]) == (3, 2)
    assert created["vectors_config"][DENSE].size == report.dim == 512
    assert str(created["vectors_config"][DENSE].distance.value) == "Cosine"
    assert str(created["sparse_vectors_config"][SPARSE].modifier.value) == "idf"
    assert set(client.indexes) == {*KEYWORD_FIELDS, *INTEGER_FIELDS}

    # Point by point: same ids, payloads, dense and sparse vectors.
    copied = client.retrieve("chunks_v1", list(source), with_payload=True, with_vectors=True)
    assert {str(p.id) for p in copied} == set(source)
    for p in copied:
        want = source[str(p.id)]
        assert p.payload == want["payload"]
        assert np.allclose(np.asarray(p.vector[DENSE], dtype=np.float32), want["dense"], atol=1e-6)
        sparse = p.vector[SPARSE]
        got = dict(zip(sparse.indices, sparse.values, strict=True))
        assert got.keys() == want["sparse"].keys()
        assert np.allclose([got[k] for k in got], [want["sparse"][k] for k in got], atol=1e-6)

    # Idempotent: a second run upserts the same ids.
    again = migrate(store_dir, client, batch=256, store_settings=target_settings)
    assert again.ok and again.target_points_before == n and again.target_points == n and again.batches == 1

    # The same questions through RetrievalService give the same hits on both stores.
    container = make_container(edge_data)
    try:
        edge_service = container.retrieval
        qdrant_store = QdrantStore(target_settings, report.dim, client=client)
        qdrant_service = RetrievalService(container.settings.retrieval, container.embedder, container.sparse,
                                          qdrant_store)
        edge_store = container.store
        everything = SearchFilter(access_groups=UNRESTRICTED)
        regulations = SearchFilter(access_groups=UNRESTRICTED, doc_types=("regulation",))
        for flt in (None, everything, BRANCH, COMPLIANCE, regulations):
            assert edge_store.count(flt) == qdrant_store.count(flt), flt
        assert edge_store.count(COMPLIANCE) > edge_store.count(BRANCH) > 0
        for query in (PUBLIC_QUERY, RESTRICTED_QUERY):
            for flt in (BRANCH, COMPLIANCE, SearchFilter(access_groups=UNRESTRICTED)):
                edge_hits = edge_service.retrieve(query, flt, k=5)
                qdrant_hits = qdrant_service.retrieve(query, flt, k=5)
                assert edge_hits and qdrant_hits
                assert qdrant_hits[0].chunk_id == edge_hits[0].chunk_id, (query, flt)
                assert ranked(qdrant_hits) == ranked(edge_hits), (query, flt)
                assert qdrant_hits[0].dense_score == pytest.approx(edge_hits[0].dense_score, abs=1e-5)
        # The access filter holds on the server too: the handbook is the top hit only for compliance.
        top_compliance = qdrant_service.retrieve(RESTRICTED_QUERY, COMPLIANCE, k=3)[0]
        assert top_compliance.source == "compliance_desk_handbook.md"
        branch_hits = qdrant_service.retrieve(RESTRICTED_QUERY, BRANCH)
        assert branch_hits and all(h.source != "compliance_desk_handbook.md" for h in branch_hits)
        assert qdrant_service.retrieve(PUBLIC_QUERY, BRANCH, k=1)[0].source == EN_MD.name
    finally:
        container.close()
        client.close()


def test_migrate_refuses_a_busy_store_and_an_incompatible_collection(edge_data: Path):
    from qdrant_client import QdrantClient, models

    from retrieval.migrate import MigrationError, migrate, stored_dim
    from retrieval.store.edge_store import EdgeStore, StoreBusy

    store_dir = edge_data / "store"
    owner = EdgeStore(store_dir, stored_dim(store_dir))  # the running app holds the store
    try:
        with pytest.raises(StoreBusy, match="Qdrant server"):
            migrate(store_dir, QdrantClient(location=":memory:"), wait_seconds=0.2)
    finally:
        owner.close()

    client = QdrantClient(location=":memory:")
    client.create_collection("chunks", vectors_config={DENSE: models.VectorParams(size=8, distance="Cosine")})
    with pytest.raises(MigrationError, match="8-dim"):
        migrate(store_dir, client)
    with pytest.raises(MigrationError, match="no embedded store"):
        migrate(edge_data / "nothing-here", client)


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant")
def test_migrate_command_line(edge_data: Path, tmp_path: Path, monkeypatch, capsys):
    from core.cli import UsageError
    from retrieval.migrate import main

    monkeypatch.setenv("CQA_DATA_DIR", str(edge_data))
    assert main(["--to-path", str(tmp_path / "rehearsal"), "--batch", "5", "--collection", "rehearsal", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["collection"] == "rehearsal" and report["copied"] == report["source_points"]
    from audit.log import AuditLog
    from settings import load_settings
    from tests.helpers import EVERYTHING

    [read] = AuditLog.from_settings(load_settings()).search(action="unrestricted_scope", reader=EVERYTHING)
    assert read.detail == {"purpose": "store migration", "target": f"local:{tmp_path / 'rehearsal'}"}
    with pytest.raises(UsageError):
        main([])
    monkeypatch.delenv("CQA_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(UsageError, match="CQA_TEST_NO_SUCH_KEY"):
        main(["--to-url", "http://127.0.0.1:9", "--api-key-env", "CQA_TEST_NO_SUCH_KEY"])


# --- deploy files vs. settings ---------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def compose_env(service: str) -> dict[str, str]:
    env = compose()["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}``."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in given:
            return given[name]
        if op == ":-":
            return arg
        raise AssertionError(f"{name} must be set ({arg})")

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def systemd_unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}} (keys repeat; backslash continues a line)."""
    text = (DEPLOY / "systemd" / name).read_text(encoding="utf-8")
    text = re.sub(r"\\\n\s*", " ", text)
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, line
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def systemd_env(name: str) -> dict[str, str]:
    env = {}
    for value in systemd_unit(name)["Service"].get("Environment", []):
        for item in shlex.split(value):
            key, _, val = item.partition("=")
            env[key] = val
    return env


def server_args(argv: list[str]) -> list[str]:
    i = argv.index("llama_cpp.server")
    assert argv[i - 1] == "-m"
    return argv[i + 1 :]


def llm_server_argvs() -> dict[str, list[str]]:
    exec_start = systemd_unit("compliance-qa-llm.service")["Service"]["ExecStart"]
    assert len(exec_start) == 1
    return {
        "compose": server_args([str(a) for a in compose()["services"]["llm"]["command"]]),
        "systemd": server_args(shlex.split(exec_start[0])),
    }


def test_every_cqa_variable_in_the_deploy_files_and_docs_is_a_setting():
    assert setting_path("CQA_LLM__HTTP_URL", Settings) == "llm.http_url"
    assert setting_path("CQA_LLM_HTTP_URL", Settings) is None and setting_path("CQA_LLM__NOPE", Settings) is None
    named = set()
    for path in [*DEPLOY.rglob("*"), OPERATIONS_MD]:
        if path.is_file():
            named |= set(re.findall(r"\bCQA_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    assert {"CQA_PROFILE", "CQA_LLM__BACKEND", "CQA_LLM__HTTP_URL", "CQA_STORE__QDRANT_URL"} <= named
    unknown = sorted(v for v in named if v not in COMMAND_VARIABLES and setting_path(v, Settings) is None)
    assert not unknown, f"not settings fields: {unknown}"


def test_site_example_validates_and_the_deploy_environments_load(monkeypatch):
    site = DEPLOY / "site.example.toml"
    data = tomllib.loads(site.read_text(encoding="utf-8"))
    assert not unknown_keys(data, Settings), unknown_keys(data, Settings)
    Settings.model_validate(data)
    assert "api_key" not in json.dumps(data), "secrets come from the environment, not the site file"

    secrets = tomllib.loads((DEPLOY / "secrets.example.toml").read_text(encoding="utf-8"))
    provider = data["security"]["oidc_provider"]
    assert {"redirect_uri", "cookie_secret"} <= secrets["auth"].keys()
    assert {"client_id", "client_secret", "server_metadata_url"} <= secrets["auth"][provider].keys()

    given = {"QDRANT_API_KEY": "q-key", "LLM_API_KEY": "l-key", "MODELS_DIR": "/srv/models"}
    environments = {
        "compose": {k: interpolate(v, given) for k, v in compose_env("app").items()},
        "systemd": {**systemd_env("compliance-qa.service"),
                    "CQA_STORE__QDRANT_API_KEY": "q-key", "CQA_LLM__HTTP_API_KEY": "l-key"},  # the EnvironmentFile
    }
    for where, env in environments.items():
        for key in [k for k in os.environ if k.startswith("CQA_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CQA_SETTINGS_FILE", str(site))  # the mounted / installed copy
        s = load_settings()
        assert s.profile == "production", where
        assert (s.llm.backend, s.llm.preset, s.llm.http_model) == ("http", PRODUCTION_PRESET, "local"), where
        assert s.llm.http_api_key.get_secret_value() == "l-key", where
        assert s.store.backend == "qdrant" and s.store.qdrant_api_key.get_secret_value() == "q-key", where
        assert s.embedding.backend == "sentence-transformers" and s.embedding.model_path is not None, where
        assert s.security.oidc_provider == provider, where
        if where == "compose":
            assert s.llm.http_url == "http://llm:8080/v1" and s.store.qdrant_url == "http://qdrant:6333"
            assert str(s.data_dir) == "/data"
        else:
            assert s.llm.http_url == "http://127.0.0.1:8080/v1"
            assert s.store.qdrant_url == data["store"]["qdrant_url"]


def test_compose_services_networks_and_secrets():
    from importlib.metadata import version

    from qdrant_client.common.version_check import is_compatible

    services = compose()["services"]
    assert {"qdrant", "llm", "app"} <= services.keys()
    # Only 127.0.0.1 is ever published; Qdrant and the LLM live on the internal network only.
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert compose()["networks"]["backend"]["internal"] is True
    assert services["qdrant"]["networks"] == ["backend"] and services["llm"]["networks"] == ["backend"]
    assert "ports" not in services["qdrant"] and "ports" not in services["llm"]

    image, tag = services["qdrant"]["image"].split(":")
    assert image == "qdrant/qdrant"
    assert is_compatible(version("qdrant-client"), tag.lstrip("v")), tag
    qdrant_env = compose_env("qdrant")
    app_env = compose_env("app")
    assert qdrant_env["QDRANT__TELEMETRY_DISABLED"] == "true"
    assert qdrant_env["QDRANT__SERVICE__API_KEY"].startswith("${QDRANT_API_KEY")
    assert app_env["CQA_STORE__QDRANT_API_KEY"] == qdrant_env["QDRANT__SERVICE__API_KEY"]
    assert app_env["CQA_LLM__HTTP_API_KEY"] == compose_env("llm")["API_KEY"]
    assert any(str(v).split(":")[0] == "qdrant-storage" for v in services["qdrant"]["volumes"])
    assert any(str(v).split(":")[1] == "/data" for v in services["app"]["volumes"])

    gpus = services["llm"]["deploy"]["resources"]["reservations"]["devices"]
    from llm.presets import get_preset

    preset = get_preset(PRODUCTION_PRESET)
    assert [(d["driver"], d["count"], d["capabilities"]) for d in gpus] == [("nvidia", preset.gpus, ["gpu"])]
    command = services["app"]["command"]
    assert command[:3] == ["streamlit", "run", "app.py"] and "/_stcore/health" in json.dumps(services["app"])


_PARSE_SCRIPT = """
import argparse, json, sys
from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings
out = {}
for name, argv in json.loads(sys.argv[1]).items():
    parser = argparse.ArgumentParser(prog="llama_cpp.server", exit_on_error=False)
    add_args_from_model(parser, Settings)  # exactly what llama_cpp/server/__main__.py does
    parser.add_argument("--config_file", type=str)
    args = parser.parse_args(argv)
    out[name] = {"model": parse_model_from_args(ModelSettings, args).model_dump(mode="json"),
                 "server": parse_model_from_args(ServerSettings, args).model_dump(mode="json")}
print(json.dumps(out))
"""


def test_llm_server_flags_match_the_production_preset():
    import llama_cpp

    from llm.llamacpp_chat import llama_kwargs
    from llm.presets import get_preset
    from settings.model import LLMSettings

    argvs = llm_server_argvs()
    help_proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--help"], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parsed = subprocess.run([sys.executable, "-c", _PARSE_SCRIPT, json.dumps(argvs)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    help_text, help_err = help_proc.communicate(timeout=120)
    assert help_proc.returncode == 0, help_err
    assert parsed.returncode == 0, parsed.stderr

    # Every flag name is one `python -m llama_cpp.server --help` lists.
    accepted = set(re.findall(r"(--[a-z0-9_]+)", help_text))
    for where, argv in argvs.items():
        used = {a for a in argv if a.startswith("--")}
        assert used <= accepted, (where, sorted(used - accepted))

    # Parsed by the server's own parser, the flags give what the app passes to llama.cpp in-process.
    preset = get_preset(PRODUCTION_PRESET)
    want = llama_kwargs(preset, LLMSettings(preset=PRODUCTION_PRESET))
    keys = ("n_ctx", "n_gpu_layers", "tensor_split", "flash_attn", "type_k", "type_v", "rope_scaling_type",
            "rope_freq_scale", "yarn_orig_ctx")
    assert set(keys) <= want.keys()
    assert want["rope_scaling_type"] == llama_cpp.LLAMA_ROPE_SCALING_TYPE_YARN
    assert want["type_k"] == want["type_v"] == llama_cpp.GGML_TYPE_Q8_0
    results = json.loads(parsed.stdout)
    for where in argvs:
        model, server = results[where]["model"], results[where]["server"]
        for key in keys:
            assert model[key] == want[key], (where, key, model[key], want[key])
        assert model["n_ctx"] == preset.n_ctx == 131072
        assert model["yarn_orig_ctx"] == preset.yarn_orig_ctx and model["rope_freq_scale"] == preset.rope_freq_scale
        assert tuple(model["tensor_split"]) == preset.tensor_split and len(model["tensor_split"]) == preset.gpus
        assert model["model_alias"] == "local" and model["model"].endswith(".gguf")
        assert server["api_key"] is None, "the API key comes from the environment (API_KEY), never argv"
        assert server["interrupt_requests"] is False, "a new request must not cut off another user's answer"
    # The app talks to the port the server listens on.
    assert results["compose"]["server"]["port"] == 8080 and ":8080/" in compose_env("app")["CQA_LLM__HTTP_URL"]
    assert results["systemd"]["server"]["host"] == "127.0.0.1"
    assert f":{results['systemd']['server']['port']}/" in systemd_env("compliance-qa.service")["CQA_LLM__HTTP_URL"]
    app_exec = systemd_unit("compliance-qa.service")["Service"]["ExecStart"][0]
    assert "streamlit run app.py" in app_exec and "--server.address 127.0.0.1" in app_exec


def test_operations_doc_names_real_commands():
    import importlib.util

    text = OPERATIONS_MD.read_text(encoding="utf-8")
    for needle in (f"python -m llm check MODEL.gguf --preset {PRODUCTION_PRESET}", "python -m retrieval.migrate",
                   "/_stcore/health", "python -m audit verify", "make doctor", "Capacity on paper",
                   "--parallel", "replication_factor", "snapshots/recover", "StoreBusy"):
        assert needle in text, needle
    docs = text + "".join(p.read_text(encoding="utf-8") for p in DEPLOY.rglob("*") if p.is_file())
    modules = set(re.findall(r"python3? -m ([a-z_][a-z0-9_.]*)", docs))
    assert {"retrieval.migrate", "llm", "audit", "llama_cpp.server"} <= modules
    for module in sorted(modules - {"venv", "pip"}):
        assert importlib.util.find_spec(module) is not None, module
    cluster_md = (DEPLOY / "qdrant-cluster.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", cluster_md, re.S)
    (node,) = [yaml.safe_load(block)["services"]["qdrant"] for block in blocks]
    assert node["image"] == compose()["services"]["qdrant"]["image"]
    assert node["environment"]["QDRANT__CLUSTER__ENABLED"] == "true" and "--bootstrap" in node["command"]
    assert "shard_number = 6" in cluster_md and "replication_factor = 2" in cluster_md
    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(encoding="utf-8"), re.M))
    for target in set(re.findall(r"`make ([a-z-]+)", text)):
        assert target in targets, target


def test_an_unknown_setting_is_an_error_naming_it_and_where_it_came_from(tmp_path):
    """A mistyped key is not dropped: the variable, or the key and its file, is named (with a hint)."""
    proc = run_cli("qa", "question", data_dir=tmp_path, CQA_MODEL__PRESET="judge-1.5b")
    assert proc.returncode != 0 and "CQA_MODEL__PRESET (did you mean CQA_LLM__PRESET?)" in proc.stderr
    site = tmp_path / "site.toml"
    site.write_text('[llm]\npreest = "judge-1.5b"\n', encoding="utf-8")
    proc = run_cli("qa", "question", data_dir=tmp_path, CQA_SETTINGS_FILE=str(site))
    assert proc.returncode != 0 and f"unknown setting 'llm.preest' in {site}" in proc.stderr
    with pytest.raises(ValueError, match="extra_forbidden|Extra inputs"):
        load_settings(data_dir=tmp_path, llm={"preest": "x"})
