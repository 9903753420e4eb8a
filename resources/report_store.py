"""Where report files live: a local folder by default, any fsspec URL by configuration
(`s3://bucket/reports`, `gs://…`, `memory://reports`), and how long they are kept. Every file is
written and deleted under the root only: paths are built with `safe_path` from plain names."""

from __future__ import annotations

import posixpath
from pathlib import Path

import dagster as dg
import fsspec
from pydantic import Field

from resources.identifiers import InvalidIdentifier, safe_path


class ReportStoreResource(dg.ConfigurableResource):
    """`base_url`: the folder or fsspec URL report files are written under (default
    `<data dir>/reports`); `retention_days`: how long a report is kept before the retention job
    removes it; `storage_options`: passed to fsspec (credentials belong in the environment the
    filesystem reads, e.g. AWS_* for S3, not here)."""

    base_url: str | None = None
    retention_days: int = Field(default=30, ge=1)
    storage_options: dict = Field(default_factory=dict)

    def root(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        from resources.settings import get_settings

        return str(get_settings().data_dir / "reports")

    def location(self, *parts: str) -> str:
        """The URL of `root/part/part...`; InvalidIdentifier when a part is not a plain name or
        the path would leave the root (a `..`, a separator, a symlink out of a local root)."""
        root = self.root()
        safe_path(root, *parts)   # for a remote URL this checks the parts, for a folder the resolved path too
        return "/".join([root, *parts])

    def contains(self, url: str) -> bool:
        """Whether `url` names a file under the root (after `..` and symlinks are resolved)."""
        root = self.root()
        if "://" not in root:
            return Path(url).resolve().is_relative_to(Path(root).resolve())
        return posixpath.normpath(url.split("://", 1)[-1]).startswith(root.split("://", 1)[-1].rstrip("/") + "/") \
            and url.split("://", 1)[0] == root.split("://", 1)[0]

    def write(self, relative_path: str, data: bytes) -> str:
        """Write one file under the root (`relative_path`: plain names joined by `/`); returns
        its URL (a plain path for local files)."""
        url = self.location(*relative_path.split("/"))
        fs, path = fsspec.core.url_to_fs(url, **self.storage_options)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(path, "wb") as handle:
            handle.write(data)
        return url

    def read(self, url: str) -> bytes:
        fs, path = fsspec.core.url_to_fs(url, **self.storage_options)
        with fs.open(path, "rb") as handle:
            return handle.read()

    def exists(self, url: str) -> bool:
        fs, path = fsspec.core.url_to_fs(url, **self.storage_options)
        return fs.exists(path)

    def delete(self, url: str) -> bool:
        """Remove a file; False when it was already gone. A URL outside the root is refused
        (InvalidIdentifier): retention never deletes anything it did not write."""
        if not self.contains(url):
            raise InvalidIdentifier(f"report file {url!r} is not under the report store {self.root()!r}")
        fs, path = fsspec.core.url_to_fs(url, **self.storage_options)
        if not fs.exists(path):
            return False
        fs.rm(path)
        return True
