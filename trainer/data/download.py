"""Opt-in download of GroupLens' MovieLens 100K archive into a cache folder, checksum verified."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Archive:
    """A published data set archive.

    Attributes:
        url: where GroupLens serves it.
        md5: the checksum GroupLens publishes beside it (``<url>.md5``).
        folder: the folder the zip unpacks to.
        marker: a file that proves the folder is complete.
    """

    url: str
    md5: str
    folder: str
    marker: str


ARCHIVES: dict[str, Archive] = {
    "ml-100k": Archive(
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        "0e33842e24a9c977be4e0107933c0723",
        "ml-100k",
        "u.data",
    ),
}


class DownloadError(RuntimeError):
    """The archive could not be fetched or failed its checksum."""


def default_cache_dir() -> Path:
    """``~/.cache/recsys-serve``: where downloads go unless ``--cache-dir`` says otherwise."""
    return Path.home() / ".cache" / "recsys-serve"


def download_dataset(name: str, cache_dir: Path | None = None, *, url: str | None = None) -> Path:
    """Fetch and unpack a data set once; later calls return the cached folder without network access.

    GroupLens' terms forbid redistribution, so the data lives in a per-user cache, never in the repo.

    Args:
        name: a key of :data:`ARCHIVES` (``ml-100k``).
        cache_dir: cache root; defaults to :func:`default_cache_dir`.
        url: override the download address (a mirror, or a ``file://`` URL in tests); the checksum
            is still enforced.

    Returns:
        The unpacked folder, e.g. ``CACHE/ml-100k`` holding ``u.data``.

    Raises:
        ValueError: unknown data set name.
        DownloadError: network failure, checksum mismatch or a corrupt zip; nothing is left half-written.
    """
    if name not in ARCHIVES:
        raise ValueError(f"unknown data set {name!r} to download; known: {', '.join(ARCHIVES)}")
    archive = ARCHIVES[name]
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_dir / archive.folder
    if (target / archive.marker).is_file():
        _LOGGER.info("using cached %s at %s", name, target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    source = url or archive.url
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f".{name}.") as work:
        zip_path = Path(work) / f"{name}.zip"
        _fetch(source, zip_path)
        digest = _md5(zip_path)
        if digest != archive.md5:
            raise DownloadError(
                f"{source}: MD5 {digest} does not match the published {archive.md5}; the download is corrupt "
                "or the archive changed upstream. Delete nothing, retry, or check GroupLens' .md5 file."
            )
        try:
            with zipfile.ZipFile(zip_path) as bundle:
                bundle.extractall(work)
        except zipfile.BadZipFile as error:
            raise DownloadError(f"{source}: not a valid zip archive: {error}") from error
        unpacked = Path(work) / archive.folder
        if not (unpacked / archive.marker).is_file():
            raise DownloadError(f"{source}: the archive lacks {archive.folder}/{archive.marker}")
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)
    _LOGGER.info("downloaded %s to %s", name, target)
    return target


def _fetch(url: str, destination: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, destination.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {destination.name}") as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as error:
        raise DownloadError(f"could not download {url}: {error}; check the network or pass --data PATH") from error


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
