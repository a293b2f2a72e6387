"""One place that turns a store setting into an :class:`~imagegen_tool.store.ImageStore`.

:class:`~imagegen_tool.generator.ImageGenerator`, the LangChain tool and the CLI all accept ``store=`` as a
ready store, a directory, or a URL; :func:`open_store` decides which store that means, so a URL can never be
mistaken for a directory name (``memory://x`` once created a local folder called ``memory:``):

* an :class:`ImageStore` is used as it is;
* ``scheme://...`` (``s3``, ``gs``, ``az``, ``memory``, ``file``, or any protocol fsspec knows) opens a
  :class:`~imagegen_tool.fsspec_store.FsspecImageStore`; a scheme nobody knows, or one whose file system is
  not installed, is a :class:`~imagegen_tool.errors.ConfigurationError` naming the extra to install;
* anything else is a directory for a :class:`~imagegen_tool.store.LocalImageStore`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError
from .store import ImageStore, LocalImageStore

__all__ = ["DEFAULT_STORE_DIR", "STORE_ENV", "open_store"]

#: Where images go when no store is configured: ``$IMAGEGEN_STORE_DIR`` (a directory or a store URL), else this.
DEFAULT_STORE_DIR = "generated-images"
STORE_ENV = "IMAGEGEN_STORE_DIR"

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+)://(?P<rest>.*)", re.DOTALL)
# ``s3:bucket`` or ``memory:/x`` are typos of URLs, not directory names; single letters stay Windows drives.
_SCHEME_ONLY = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):(?!//)")
_KNOWN_SCHEMES = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory", "file", "local", "http", "https"}
)


def open_store(
    store: ImageStore | str | os.PathLike[str] | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    **store_options: Any,
) -> ImageStore:
    """The store a setting names.

    Args:
        store: a ready store, a directory path, or a URL such as ``s3://bucket/prefix`` or ``memory://tests``.
            ``None`` reads ``$IMAGEGEN_STORE_DIR`` (a directory or a URL), else ``./generated-images``.
        storage_options: for URLs, passed to the fsspec file system (endpoint, profile, ...). Credentials come
            from the back-end's usual environment and configuration.
        store_options: further keyword arguments of the store class, e.g. ``public_base_url``,
            ``url_expires`` or ``grace_period``.
    """
    if isinstance(store, ImageStore):
        if storage_options or store_options:
            raise ConfigurationError("storage options apply to a store URL or path, not to a ready ImageStore")
        return store
    if store is None:
        store = os.environ.get(STORE_ENV) or DEFAULT_STORE_DIR
    text = os.fspath(store)
    if isinstance(text, bytes):  # os.fspath of a bytes path
        raise ConfigurationError("pass the store location as text, not bytes")
    match = _URL.fullmatch(text) if isinstance(store, str) else None
    if match is not None:
        if match["scheme"].lower() in ("http", "https"):
            raise ConfigurationError(
                f"{text!r} is a web address: images cannot be stored over plain HTTP; use s3://, gs://, az:// "
                "or a directory (to give handles browser URLs, pass public_base_url=...)"
            )
        from .fsspec_store import FsspecImageStore

        return FsspecImageStore(text, storage_options=storage_options, **store_options)
    typo = _SCHEME_ONLY.match(text) if isinstance(store, str) else None
    if typo is not None and typo["scheme"].lower() in _KNOWN_SCHEMES:
        scheme = typo["scheme"]
        raise ConfigurationError(
            f"{text!r} looks like a store URL without '//': write {scheme}://{text[len(scheme) + 1 :].lstrip('/')}"
        )
    if storage_options:
        raise ConfigurationError("storage_options apply to store URLs (s3://, gs://, ...), not to a directory")
    return LocalImageStore(text, **store_options)
