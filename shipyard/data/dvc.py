"""Reading DVC pointer files, so a snapshot records the DVC version of its data.

Shipyard does not depend on DVC: it only parses the ``PATH.dvc`` file that ``dvc add
PATH`` leaves next to the data, e.g.::

    outs:
    - md5: 22a1a2931c8370d3aeedd7183606fd7f
      size: 14445097
      hash: md5
      path: train.csv

For a folder the ``md5`` ends in ``.dir``.

A pointer goes stale when the data changes after ``dvc add`` without another ``dvc add``:
:func:`stale_md5` compares a file's md5 with the pointer's (DVC 3 hashes the bytes; DVC 2
hashed text files with CRLF line ends turned into LF, so either matches). Folders are not
checked: their ``.dir`` hash covers DVC's own listing, which Shipyard does not rebuild.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from shipyard.errors import DataError

__all__ = ["DvcRef", "dvc_file_for", "file_md5", "read_dvc_ref", "stale_md5"]

_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")


@dataclass(frozen=True)
class DvcRef:
    """The DVC version of a dataset: the ``md5`` and ``path`` of its entry in ``outs``.

    ``pointer_md5`` is set only for a stale pointer: ``md5`` is then the file's own md5
    and ``pointer_md5`` what the ``.dvc`` file still says.
    """

    md5: str
    path: str
    pointer_md5: str | None = None

    @property
    def stale(self) -> bool:
        """Whether the data changed after ``dvc add`` (the pointer names other data)."""
        return self.pointer_md5 is not None

    @property
    def is_directory(self) -> bool:
        """Whether DVC tracks a folder (its md5 names a ``.dir`` listing)."""
        return self.md5.endswith(".dir")


def dvc_file_for(data_path: Path) -> Path:
    """Where DVC keeps the pointer file for ``data_path``: ``data/train.csv.dvc``."""
    data_path = Path(data_path)
    return data_path.with_name(data_path.name + ".dvc")


def read_dvc_ref(data_path: Path) -> DvcRef | None:
    """The :class:`DvcRef` from the ``.dvc`` file next to ``data_path``, or ``None`` if absent."""
    dvc_file = dvc_file_for(data_path)
    if not dvc_file.is_file():
        return None
    try:
        document = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _malformed(dvc_file, f"not valid YAML ({exc})") from exc
    outs = document.get("outs") if isinstance(document, dict) else None
    if not isinstance(outs, list) or not outs or not all(isinstance(out, dict) for out in outs):
        raise _malformed(dvc_file, "it has no 'outs' list")
    matching = [out for out in outs if out.get("path") == Path(data_path).name]
    if not matching and len(outs) == 1:
        matching = outs
    if len(matching) != 1:
        raise _malformed(dvc_file, f"no single entry in 'outs' for {Path(data_path).name!r}")
    out = matching[0]
    md5, path = out.get("md5"), out.get("path")
    if not isinstance(md5, str) or not _MD5.fullmatch(md5):
        raise _malformed(dvc_file, f"'md5' is {md5!r}, not an md5 hash")
    if not isinstance(path, str) or not path:
        raise _malformed(dvc_file, "its entry has no 'path'")
    return DvcRef(md5=md5, path=path)


def file_md5(path: Path) -> tuple[str, str]:
    """The md5 of the file's bytes, and of its bytes with CRLF line ends as LF (DVC 2)."""
    plain, text = hashlib.md5(usedforsecurity=False), hashlib.md5(usedforsecurity=False)
    carry = b""
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            plain.update(chunk)
            chunk = carry + chunk
            # A CR at the end of a chunk may start a CRLF split across two reads.
            carry = b"\r" if chunk.endswith(b"\r") else b""
            text.update((chunk[:-1] if carry else chunk).replace(b"\r\n", b"\n"))
    text.update(carry)
    return plain.hexdigest(), text.hexdigest()


def stale_md5(data_path: Path, ref: DvcRef) -> str | None:
    """The file's own md5 when it no longer matches the pointer's; ``None`` when it does.

    Also ``None`` for a folder, or when the data is missing (reading it reports that).
    """
    data_path = Path(data_path)
    if ref.is_directory or not data_path.is_file():
        return None
    plain, text = file_md5(data_path)
    return None if ref.md5 in (plain, text) else plain


def _malformed(dvc_file: Path, reason: str) -> DataError:
    return DataError(
        f"Cannot read the DVC file {dvc_file}: {reason}.",
        hint="Regenerate it with `dvc add` on the data, or delete it if the data is not in DVC.",
    )
