"""Files the platform keeps outside the warehouse (landing zone, archive, reports): on disk or in S3.

Stages name files by key (`MlopsHome.landing_key(...)` and friends); a profile's storage turns a key
into a location. Readers get a local path (`local_copy`): the file itself on disk, a downloaded copy
from S3, so parsing code never cares where bytes live. Writers fill a local temporary (`writing`)
that appears at the key whole or not at all.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from mlops_assets.files import TEMP_MARK


@dataclass(frozen=True)
class StoredFile:
    """A file under a prefix: its key, name, size and last change (nanoseconds since the epoch)."""

    key: str
    name: str
    size: int
    modified_ns: int


class FileStorage(dg.ConfigurableResource, ABC):
    """Where landing files, archived copies and reports live; keys come from `MlopsHome`."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """The location of `key` as people and the warehouse records see it (a path, or s3://...)."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[StoredFile]:
        """Files directly under `prefix`, by name (temporaries of writers in progress left out)."""

    @abstractmethod
    def local_copy(self, location: str) -> contextlib.AbstractContextManager[Path]:
        """A local path holding the bytes at `location` (a uri from `uri()`) for the duration of the block."""

    @abstractmethod
    def writing(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """A local temporary to write; published at `key` when the block ends without error."""

    def put(self, local: Path, key: str) -> str:
        """Store a copy of the local file `local` at `key`; returns its uri."""
        with self.writing(key) as temporary:
            shutil.copyfile(local, temporary)
        return self.uri(key)

    def archive(self, local: Path, dataset: str, partition: str, content_hash: str) -> str:
        """Keep one copy per distinct content of a partition's file (`MlopsHome.archive_key`); returns its uri."""
        from mlops_assets.home import MlopsHome

        key = MlopsHome.archive_key(dataset, partition, content_hash, local.name)
        return self.uri(key) if self.exists(key) else self.put(local, key)

    def sweep_temporaries(self, prefix: str) -> list[str]:
        """Remove what dead writers left under `prefix` (nothing to do where writes are atomic)."""
        return []


class LocalStorage(FileStorage):
    """Files under MLOPS_HOME; writes are atomic renames (see `files.atomic_path`)."""

    root: str

    def path(self, key: str) -> Path:
        return Path(self.root) / key

    def uri(self, key: str) -> str:
        return str(self.path(key))

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def list(self, prefix: str) -> list[StoredFile]:
        folder = self.path(prefix)
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                stat = path.stat()
                found.append(StoredFile(f"{prefix}/{path.name}", path.name, stat.st_size, stat.st_mtime_ns))
        return found

    @contextlib.contextmanager
    def local_copy(self, location: str) -> Iterator[Path]:
        if not Path(location).exists():
            raise FileNotFoundError(2, "no such file", location)
        yield Path(location)

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[Path]:
        from mlops_assets.files import atomic_path

        with atomic_path(self.path(key)) as temporary:
            yield temporary

    def put(self, local: Path, key: str) -> str:
        from mlops_assets.files import atomic_copy

        atomic_copy(local, self.path(key))
        return self.uri(key)

    def sweep_temporaries(self, prefix: str) -> list[str]:
        from mlops_assets.files import sweep_temporaries

        return [str(p) for p in sweep_temporaries(self.path(prefix))]


class S3Storage(FileStorage):
    """Files in `s3://<bucket>/<prefix>/<key>` through dagster-aws's S3Resource; a PUT is atomic, so a
    reader never sees half a file. Local copies go to `scratch_dir` (the system's temp folder by default)."""

    s3: S3Resource
    bucket: str
    prefix: str = ""
    scratch_dir: str | None = None

    _client: object | None = PrivateAttr(default=None)

    def _s3(self):
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    def object_key(self, key: str) -> str:
        return "/".join(p for p in (self.prefix.strip("/"), key) if p)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def _split(self, location: str) -> tuple[str, str]:
        if not location.startswith("s3://"):
            raise ValueError(f"{location}: not an s3:// location; this deployment keeps its files in s3://{self.bucket}")
        bucket, _, key = location[len("s3://"):].partition("/")
        return bucket, key

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._s3().head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list(self, prefix: str) -> list[StoredFile]:
        folder = self.object_key(prefix).rstrip("/") + "/"
        found = []
        for page in self._s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder,
                                                                           Delimiter="/"):
            for item in page.get("Contents", []):
                name = item["Key"][len(folder):]
                if name and not name.startswith("."):
                    modified = int(item["LastModified"].timestamp() * 1e9)
                    found.append(StoredFile(f"{prefix}/{name}", name, int(item["Size"]), modified))
        return sorted(found, key=lambda f: f.name)

    @contextlib.contextmanager
    def local_copy(self, location: str) -> Iterator[Path]:
        bucket, key = self._split(location)
        Path(self.scratch_dir or tempfile.gettempdir()).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="mlops-s3-", dir=self.scratch_dir) as scratch:
            local = Path(scratch) / Path(key).name
            try:
                self._s3().download_file(bucket, key, str(local))
            except Exception as exc:  # botocore raises ClientError for a missing key, with a terse message
                raise FileNotFoundError(2, f"cannot read it from S3 ({exc})", location) from None
            yield local

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[Path]:
        Path(self.scratch_dir or tempfile.gettempdir()).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="mlops-s3-", dir=self.scratch_dir) as scratch:
            temporary = Path(scratch) / f"{TEMP_MARK}{uuid.uuid4().hex[:12]}-{Path(key).name}"
            yield temporary
            self._s3().upload_file(str(temporary), self.bucket, self.object_key(key))
