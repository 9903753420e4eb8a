"""Where report files live: a local folder by default, any fsspec URL by configuration
(`s3://bucket/reports`, `gs://…`, `memory://reports`), and how long they are kept."""

from __future__ import annotations

import dagster as dg
import fsspec
from pydantic import Field


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
        from pipelines.settings import get_settings

        return str(get_settings().data_dir / "reports")

    def write(self, relative_path: str, data: bytes) -> str:
        """Write one file under the root; returns its URL (a plain path for local files)."""
        url = f"{self.root()}/{relative_path}"
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
        """Remove a file; False when it was already gone."""
        fs, path = fsspec.core.url_to_fs(url, **self.storage_options)
        if not fs.exists(path):
            return False
        fs.rm(path)
        return True
