"""A root folder that is local or in a bucket, read and written through fsspec.

``artifact_root`` and ``serving.logs`` are each one :class:`Location`. A local one is an
absolute path on this machine; a remote one is a URL (``s3://bucket/prefix``, ``gs://``,
``az://``) reached through the fsspec implementation of its optional extra. Every failure
to reach a bucket becomes a :class:`~shipyard.errors.StorageError` naming the bucket and
what to check, after one attempt bounded by ``storage.timeout_seconds``: botocore's and
s3fs's retries are turned off, so an unreachable endpoint never turns into a retry storm.
"""

from __future__ import annotations

import functools
import os
import posixpath
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from shipyard.config.storage import StorageSettings
from shipyard.errors import ConfigError, StorageError

if TYPE_CHECKING:
    import duckdb
    import fsspec
    import pyarrow.fs

__all__ = ["Location", "location", "storage_error"]

# scheme -> (extra to install, fsspec protocol)
_REMOTE = {
    "s3": ("s3", "s3"),
    "s3a": ("s3", "s3"),
    "gs": ("gcs", "gcs"),
    "gcs": ("gcs", "gcs"),
    "az": ("azure", "az"),
    "abfs": ("azure", "abfs"),
    "abfss": ("azure", "abfs"),
}


@dataclass(frozen=True)
class Location:
    """A root folder, local or in a bucket.

    ``url`` is ``scheme://bucket/prefix`` for a bucket, or an absolute POSIX path for a
    local folder. Relative names below it use ``/`` on every platform.
    """

    url: str
    settings: StorageSettings = field(default_factory=StorageSettings)  # type: ignore[arg-type]

    @property
    def scheme(self) -> str:
        """``file`` for a local folder, else the URL's scheme (``s3``, ``gs`` …)."""
        return self.url.split("://", 1)[0] if "://" in self.url else "file"

    @property
    def is_local(self) -> bool:
        """Whether the location is a folder on this machine."""
        return self.scheme == "file"

    @property
    def bucket(self) -> str:
        """The bucket (container) name of a remote location; the folder of a local one."""
        if self.is_local:
            return self.url
        return self.url.split("://", 1)[1].split("/", 1)[0]

    def child(self, *parts: str) -> Location:
        """The location of a sub-folder."""
        return Location(self.path(*parts), self.settings)

    def path(self, *parts: str) -> str:
        """Full URL (or absolute local path) of a file or folder under this location."""
        clean = [p.strip("/") for p in parts if p and p.strip("/")]
        if not clean:
            return self.url
        return posixpath.join(self.url.rstrip("/") or "/", *clean)

    def arrow_path(self, *parts: str) -> str:
        """The path of a file under this location as :attr:`arrow_fs` names it."""
        full = self.path(*parts)
        return full if self.is_local else full.split("://", 1)[1]

    def __str__(self) -> str:
        return self.url

    # -- file systems -------------------------------------------------------------------

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The fsspec file system (``LocalFileSystem`` for a local folder)."""
        return _filesystem(self.scheme, self.settings, _environment_key())

    @property
    def arrow_fs(self) -> pyarrow.fs.FileSystem:
        """A pyarrow file system over the same files; paths from :meth:`arrow_path`."""
        return _arrow_filesystem(self.scheme, self.settings, _environment_key())

    def local_path(self) -> Path:
        """The folder as a :class:`~pathlib.Path`; a :class:`ConfigError` for a bucket."""
        if not self.is_local:
            raise ConfigError(
                f"{self.url} is in a bucket, and this needs a local folder.",
                hint="Use a local path for this setting, or a command that reads buckets.",
            )
        return Path(self.url)

    # -- files --------------------------------------------------------------------------

    def exists(self, name: str = "") -> bool:
        """Whether a file or folder exists under this location."""
        with _translated(self, "check"):
            return bool(self._small("exists", self.path(name)))

    def read_bytes(self, name: str) -> bytes:
        """The contents of a file; ``FileNotFoundError`` if it is not there."""
        with _translated(self, "read"):
            # No overall deadline: the file may be large; each read has its timeout.
            data: bytes = self.fs.cat_file(self.path(name))
            return data

    def read_text(self, name: str) -> str:
        """The contents of a UTF-8 text file."""
        return self.read_bytes(name).decode("utf-8")

    def write_bytes(self, name: str, data: bytes) -> str:
        """Write a whole file and return its full path.

        Readers never see half a file: locally it is written to a temporary file, fsynced
        and renamed into place; an object store's single PUT is atomic already.
        """
        target = self.path(name)
        with _translated(self, "write"):
            if self.is_local:
                _atomic_local_write(Path(target), data)
            else:
                self._small("pipe_file", target, data, size=len(data))
        return target

    def write_text(self, name: str, text: str) -> str:
        """Write a whole UTF-8 text file (atomically, as :meth:`write_bytes`)."""
        return self.write_bytes(name, text.encode("utf-8"))

    def open(self, name: str, mode: str = "rb") -> IO[Any]:
        """An open file (streamed) under this location; parents are created for writing."""
        target = self.path(name)
        with _translated(self, "write" if "w" in mode or "a" in mode else "read"):
            if self.is_local and ("w" in mode or "a" in mode):
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            handle: IO[Any] = self.fs.open(target, mode)
            return handle

    def put(self, local: Path, name: str) -> str:
        """Copy a local file or folder (recursively) to ``name`` under this location."""
        target = self.path(name)
        with _translated(self, "write"):
            if self.is_local:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            self.fs.put(str(local), target, recursive=local.is_dir())
        return target

    def get(self, name: str, local: Path) -> Path:
        """Copy a file or folder under this location to a local path."""
        with _translated(self, "read"):
            source = self.path(name)
            local.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get(source, str(local), recursive=self.fs.isdir(source))
        return local

    def glob(self, pattern: str) -> list[str]:
        """Full paths of the files matching a glob below this location, sorted."""
        with _translated(self, "list"):
            found = self.fs.glob(self.path(pattern))
        if self.is_local:
            return sorted(str(p) for p in found)
        return sorted(f"{self.scheme}://{p}" for p in found)

    def remove(self, name: str = "", *, recursive: bool = False) -> None:
        """Delete a file (or, with ``recursive``, a folder); nothing if it is not there."""
        target = self.path(name)
        with _translated(self, "delete"):
            if self._small("exists", target):
                self._small("rm", target, recursive=recursive)

    def duckdb_source(self, con: duckdb.DuckDBPyConnection, pattern: str) -> str:
        """The path to give ``read_parquet`` on ``con`` for files matching ``pattern``.

        A remote location registers its fsspec file system on the connection (DuckDB's
        httpfs extension is not needed), so DuckDB streams the objects through it.
        """
        if not self.is_local:
            fs = self.fs
            registered = set(con.list_filesystems())
            if _duckdb_name(fs) not in registered:
                con.register_filesystem(fs)
        return self.path(pattern)

    def check(self) -> None:
        """Reachable and writable, else a :class:`StorageError` saying what to check.

        Writes and deletes a small probe object, the cheapest proof that the endpoint
        answers, the credentials are accepted and the permission is granted.
        """
        probe = f".shipyard-check-{uuid.uuid4().hex}"
        self.write_bytes(probe, b"ok")
        with _translated(self, "delete"):
            self._small("rm", self.path(probe))

    def _small(self, method: str, *args: Any, size: int = 0, **kwargs: Any) -> Any:
        """Call a file-system method under one overall deadline when it is remote.

        Connect and read timeouts do not cover every hang (a PUT waiting for
        ``100-continue`` from an endpoint that accepted and went silent), so a request
        of known size also gets a deadline: the timeout, plus time for the bytes at a
        slow 256 KiB/s.
        """
        fs = self.fs
        if getattr(fs, "async_impl", False):
            kwargs["timeout"] = self.settings.timeout_seconds + size / 262_144
        return getattr(fs, method)(*args, **kwargs)


def location(where: str | Path, *, base: Path, settings: StorageSettings) -> Location:
    """The :class:`Location` a setting names: a URL, or a path relative to ``base``.

    An unknown scheme, or one whose fsspec extra is not installed, is a
    :class:`ConfigError` naming what to install.
    """
    text = str(where)
    scheme_only = text.split(":/", 1)[0].lower() if ":/" in text else ""
    if "://" not in text and scheme_only in _REMOTE:
        raise ConfigError(
            f"{text} looks like a bucket URL with one slash after '{scheme_only}:'.",
            hint=f"Write {scheme_only}://{text.split(':/', 1)[1].lstrip('/')} (a Path "
            "turns '//' into '/').",
        )
    if "://" not in text:
        path = Path(text).expanduser()
        absolute = path if path.is_absolute() else (base / path)
        return Location(absolute.resolve().as_posix(), settings)
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme == "file":
        return location(rest, base=base, settings=settings)
    if scheme not in _REMOTE:
        raise ConfigError(
            f"{text}: storage scheme '{scheme}://' is not supported.",
            hint="Use a local path, s3://bucket/prefix (pip install 'shipyard-mlops[s3]'), "
            "gs://bucket/prefix (pip install 'shipyard-mlops[gcs]') or az://container/prefix "
            "(pip install 'shipyard-mlops[azure]').",
        )
    bucket = rest.split("/", 1)[0]
    if not bucket:
        raise ConfigError(
            f"{text}: the URL names no bucket.", hint=f"Write {scheme}://BUCKET/PREFIX."
        )
    _filesystem(
        scheme, settings, _environment_key()
    )  # the extra is installed, or say which one to install
    return Location(f"{scheme}://{rest.rstrip('/')}", settings)


# -- internals ------------------------------------------------------------------------


def _environment_key() -> int:
    """A fingerprint of the storage variables: a changed credential gets a new client."""
    return hash(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_ENV))))


_ENV = ("AWS_", "GOOGLE_", "AZURE_")


@functools.lru_cache(maxsize=16)
def _filesystem(
    scheme: str, settings: StorageSettings, environment: int
) -> fsspec.AbstractFileSystem:
    if scheme == "file":
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(auto_mkdir=True)
    extra, protocol = _REMOTE[scheme]
    try:
        if protocol == "s3":
            import s3fs

            client_kwargs: dict[str, Any] = {}
            if settings.region:
                client_kwargs["region_name"] = settings.region
            fs = s3fs.S3FileSystem(
                endpoint_url=settings.endpoint_url,
                client_kwargs=client_kwargs,
                config_kwargs={
                    "connect_timeout": settings.timeout_seconds,
                    "read_timeout": settings.timeout_seconds,
                    # One attempt: a bucket that cannot be reached is reported now, not
                    # after botocore's and s3fs's retries multiply into minutes.
                    "retries": {"total_max_attempts": 1, "mode": "standard"},
                },
                skip_instance_cache=True,
            )
            fs.retries = 1
            return fs
        if protocol == "gcs":
            import gcsfs

            return gcsfs.GCSFileSystem(timeout=settings.timeout_seconds, retries=1)
        import adlfs

        return adlfs.AzureBlobFileSystem(timeout=int(settings.timeout_seconds))
    except ImportError:
        raise ConfigError(
            f"{scheme}:// storage needs the '{extra}' extra, which is not installed.",
            hint=f"pip install 'shipyard-mlops[{extra}]'",
        ) from None


@functools.lru_cache(maxsize=16)
def _arrow_filesystem(
    scheme: str, settings: StorageSettings, environment: int
) -> pyarrow.fs.FileSystem:
    import pyarrow.fs as pafs

    if scheme == "file":
        return pafs.LocalFileSystem()
    return pafs.PyFileSystem(pafs.FSSpecHandler(_filesystem(scheme, settings, environment)))


def _duckdb_name(fs: fsspec.AbstractFileSystem) -> str:
    protocol = fs.protocol
    return protocol if isinstance(protocol, str) else protocol[0]


def _atomic_local_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class _translated:
    """Turn a file system's exception into a :class:`StorageError` (context manager).

    ``FileNotFoundError`` for a missing *object* passes through (callers decide what a
    missing file means); a missing bucket does not.
    """

    def __init__(self, where: Location, action: str) -> None:
        self.where = where
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> Literal[False]:
        if exc is None or isinstance(exc, StorageError | ConfigError):
            return False
        if not isinstance(exc, Exception):
            return False
        if isinstance(exc, FileNotFoundError) and not _bucket_missing(exc):
            return False
        if self.where.is_local and not isinstance(exc, PermissionError | OSError):
            return False
        raise storage_error(exc, self.where, self.action) from None


def _bucket_missing(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "nosuchbucket" in text or "bucket does not exist" in text


def storage_error(exc: BaseException, where: Location, action: str = "reach") -> StorageError:
    """A :class:`StorageError` naming the bucket and what to check, for ``exc``."""
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    bucket = where.bucket
    if where.is_local:
        return StorageError(
            f"Cannot {action} {where.url}: {getattr(exc, 'strerror', None) or exc}.",
            hint="Check that the folder exists and that this user may write to it.",
        )
    if _bucket_missing(exc):
        return StorageError(
            f"Bucket '{bucket}' does not exist (while trying to {action} {where.url}).",
            hint="Create the bucket, or fix artifact_root / serving.logs; with a non-AWS "
            "endpoint check storage.endpoint_url.",
        )
    if "nocredentials" in low or "unable to locate credentials" in low:
        return StorageError(
            f"No credentials to {action} bucket '{bucket}' ({where.url}).",
            hint="Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or give "
            "this host an instance role; credentials never go in shipyard.yaml.",
        )
    if any(
        marker in low
        for marker in (
            "invalidaccesskeyid",
            "access key id you provided does not exist",
            "signaturedoesnotmatch",
            "signature we calculated does not match",
            "expiredtoken",
            "invalidtoken",
            "security token included in the request is",
        )
    ):
        return StorageError(
            f"The credentials were refused by bucket '{bucket}' ({where.url}).",
            hint="Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE in this "
            "environment: the key is unknown, wrong or expired.",
        )
    if isinstance(exc, PermissionError) or "accessdenied" in low or "forbidden" in low:
        return StorageError(
            f"Permission denied to {action} bucket '{bucket}' ({where.url}).",
            hint="Check the IAM or bucket policy of the credentials in use: Shipyard needs "
            "s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on the prefix.",
        )
    if any(
        marker in low
        for marker in ("connect", "timeout", "timed out", "endpoint", "name resolution", "refused")
    ):
        endpoint = where.settings.endpoint_url or "the default AWS endpoint"
        return StorageError(
            f"Cannot reach bucket '{bucket}' at {endpoint} (while trying to {action} {where.url}).",
            hint="Check storage.endpoint_url (or AWS_ENDPOINT_URL_S3), the network and any "
            f"proxy; each attempt waits at most storage.timeout_seconds "
            f"({where.settings.timeout_seconds:g} s).",
        )
    return StorageError(
        f"Cannot {action} {where.url} in bucket '{bucket}': {type(exc).__name__}.",
        hint="Check storage.endpoint_url, the credentials in the environment and the "
        "bucket policy.",
    )
