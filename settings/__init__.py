"""Typed settings: defaults < profile file < settings file < CQA_* environment variables.

Profiles live in ``settings/profiles/<name>.toml`` (``dev`` is the default, ``production``
and ``test`` ship too); ``CQA_SETTINGS_FILE`` names an extra TOML file for a site's own
values; nested fields are set from the environment with ``__``, e.g. ``CQA_LLM__PRESET``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from settings.model import (
    DatabaseSettings,
    DocType,
    EmbeddingSettings,
    EvaluationSettings,
    IngestSettings,
    LLMSettings,
    RetrievalSettings,
    SecuritySettings,
    StoreSettings,
    UISettings,
    default_model_dir,
)
from settings.strict import check_environment, check_files

PROFILE_DIR = Path(__file__).parent / "profiles"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CQA_", env_nested_delimiter="__", extra="forbid")

    profile: str = "dev"
    data_dir: Path = Path("data")
    model_dir: Path = Field(default_factory=default_model_dir)
    llm: LLMSettings = LLMSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    store: StoreSettings = StoreSettings()
    database: DatabaseSettings = DatabaseSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    ingest: IngestSettings = IngestSettings()
    ui: UISettings = UISettings()
    security: SecuritySettings = SecuritySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        profile = os.environ.get("CQA_PROFILE", "dev")
        profile_file = PROFILE_DIR / f"{profile}.toml"
        if not profile_file.exists():
            known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.toml")))
            raise ValueError(f"unknown profile {profile!r} (known: {known})")
        check_environment(os.environ, settings_cls)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        files = [profile_file]
        site_file = os.environ.get("CQA_SETTINGS_FILE")
        if site_file:
            if not Path(site_file).is_file():
                raise ValueError(f"CQA_SETTINGS_FILE {site_file!r} does not exist")
            files.insert(0, Path(site_file))
        check_files(files, settings_cls)
        sources += [TomlConfigSettingsSource(settings_cls, toml_file=f) for f in files]
        return tuple(sources)

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.sqlite3"

    @property
    def feedback_path(self) -> Path:
        return self.data_dir / "feedback.sqlite3"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings afresh (profile, settings file, environment)."""
    return Settings(**overrides)


__all__ = [
    "DatabaseSettings",
    "DocType",
    "EmbeddingSettings",
    "EvaluationSettings",
    "IngestSettings",
    "LLMSettings",
    "RetrievalSettings",
    "SecuritySettings",
    "Settings",
    "StoreSettings",
    "UISettings",
    "load_settings",
]
