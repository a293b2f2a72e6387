"""Choosing a store from a setting: URLs open object stores, paths stay local, mistakes are clear errors."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path
from typing import Any

import pytest

from imagegen_tool import ImageGenerator
from imagegen_tool.errors import ConfigurationError
from imagegen_tool.fsspec_store import FsspecImageStore
from imagegen_tool.store import LocalImageStore
from imagegen_tool.store_factory import open_store


def test_memory_url_is_an_object_store_not_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("memory://factory-test")
    assert isinstance(store, FsspecImageStore)
    assert not (tmp_path / "memory:").exists()
    generator = ImageGenerator(store="memory://factory-test", api_key="sk-test")
    assert isinstance(generator.store, FsspecImageStore)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["file:///srv/images", "s3://bucket/prefix", "memory://x/y"])
def test_urls_open_fsspec_stores(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, FsspecImageStore)
    assert store.url == url


def test_plain_paths_stay_local(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path / "images"), LocalImageStore)
    assert isinstance(open_store(str(tmp_path / "images")), LocalImageStore)
    assert isinstance(open_store("relative/dir"), LocalImageStore)


def test_a_ready_store_is_used_as_it_is(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    assert open_store(store) is store
    with pytest.raises(ConfigurationError, match="ready ImageStore"):
        open_store(store, storage_options={"anon": True})


def test_environment_may_name_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGEN_STORE_DIR", "memory://from-env")
    store = open_store(None)
    assert isinstance(store, FsspecImageStore)
    assert store.url == "memory://from-env"


def test_unknown_scheme_is_a_clear_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown store URL scheme 'nosuch'.*s3://"):
        open_store("nosuch://bucket/x")


@pytest.mark.parametrize(("url", "hint"), [("s3:bucket/x", "s3://bucket/x"), ("memory:/x", "memory://x")])
def test_url_typos_are_not_taken_for_folder_names(url: str, hint: str) -> None:
    with pytest.raises(ConfigurationError, match=hint):
        open_store(url)


def test_web_addresses_are_refused_with_the_public_url_hint() -> None:
    with pytest.raises(ConfigurationError, match="public_base_url"):
        open_store("https://cdn.example.test/images")


def test_storage_options_need_a_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="storage_options"):
        open_store(tmp_path, storage_options={"anon": True})


def test_missing_backend_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """gs:// without gcsfs installed (it is not in the dev extra) names imagegen-tool[gcs]."""
    real_import = builtins.__import__

    def no_gcsfs(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "gcsfs" or name.startswith("gcsfs."):
            raise ImportError("No module named 'gcsfs'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "gcsfs", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_gcsfs)
    with pytest.raises(ConfigurationError, match=r"imagegen-tool\[gcs\]"):
        open_store("gs://bucket/prefix")


def test_missing_fsspec_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_fsspec(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "fsspec" or name.startswith("fsspec."):
            raise ImportError("No module named 'fsspec'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fsspec)
    with pytest.raises(ConfigurationError, match=r"imagegen-tool\[s3\]"):
        open_store("s3://bucket/prefix")
    with pytest.raises(ConfigurationError, match=r"imagegen-tool\[fsspec\]"):
        open_store("memory://x")


@pytest.mark.parametrize("url", ["s3://", "memory://", "file:///"])
def test_urls_must_name_a_bucket_or_directory(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_presigned_url_lifetime_is_checked() -> None:
    from datetime import timedelta

    with pytest.raises(ConfigurationError, match="7 days"):
        open_store("s3://bucket/x", url_expires=timedelta(days=8))
    with pytest.raises(ConfigurationError, match="positive"):
        open_store("s3://bucket/x", url_expires=timedelta(0))
