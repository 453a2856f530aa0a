"""Repair an embedded collection holding payloads the engine cannot read back.

Versions before the metadata limits (knowledge/validation.py) stored metadata of any depth.
qdrant-edge-py 0.9 writes a payload nested 128 levels deep, then fails every read of it
("recursion limit exceeded"), and a payload nested 124 or more levels deep that was the
last write flushed makes the shard fail to load at all. What was learnt by experiment:

* Only ``overwrite_payload`` (or an upsert of the same id) may touch such a point first:
  deleting it, or setting part of its payload, reads the old payload, fails, and leaves the
  shard refusing every later write until it is reopened. After an overwrite, a delete works.
* Such a point's text cannot be read, only its id, vector and (through the payload index)
  its ``metadata.source``: it is removed and reported, for its owner to store again.
* A shard that does not load is rebuilt: a copy opened without its write-ahead log is read
  into a fresh shard (resetting the log alone would restart operation versions at 0, and the
  engine would then ignore updates to existing points). The original is kept beside it.

Run with the server stopped: ``shield-mcp repair`` (it takes the data-dir lock).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Substrings of the engine's errors for a payload too deep to decode (payload storage) or
# to replay (write-ahead log).
PAYLOAD_DECODE = "Failed to deserialize payload"
WAL_DECODE = "RecursionLimitExceeded"
# Payloads deeper than this are clipped: the engine breaks at 124 (load) and 128 (read).
SAFE_DEPTH = 64
CLIPPED = "[nested data removed by shield-mcp repair]"
PAGE = 1000


def is_damage(exc: BaseException) -> bool:
    """Whether an engine error says a stored payload is too deep to read back."""
    text = str(exc)
    return PAYLOAD_DECODE in text or WAL_DECODE in text


@dataclass
class RepairReport:
    collection: str
    points: int = 0  # points in the collection after the repair
    removed: dict[str, str | None] = field(default_factory=dict)  # id -> its metadata.source
    clipped: list[str] = field(default_factory=list)
    kept_copy: Path | None = None  # the original shard, when it had to be rebuilt

    @property
    def changed(self) -> bool:
        return bool(self.removed or self.clipped or self.kept_copy)


def depth(value: Any) -> int:
    """JSON nesting depth (a container counts 1); iterative, so safe for any input."""
    best, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            best = max(best, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            best = max(best, level)
            stack.extend((child, level + 1) for child in item)
    return best


def clip(value: Any, keep: int) -> Any:
    """``value`` with containers below ``keep`` levels replaced by a marker (it was read
    back, so it is at most ~127 levels deep: recursion is safe here)."""
    if not isinstance(value, dict | list):
        return value
    if keep <= 0:
        return CLIPPED
    if isinstance(value, dict):
        return {k: clip(v, keep - 1) for k, v in value.items()}
    return [clip(v, keep - 1) for v in value]


def _all_ids(shard: Any) -> list[Any]:
    from qdrant_edge import ScrollRequest

    ids: list[Any] = []
    offset: Any = None
    while True:
        request = ScrollRequest(offset=offset, limit=PAGE, with_payload=False, with_vector=False)
        records, offset = shard.scroll(request)
        ids.extend(r.id for r in records)
        if offset is None or not records:
            return ids


def _unreadable(shard: Any, ids: Sequence[Any]) -> list[Any]:
    """The ids among ``ids`` whose payload cannot be read (a page fails as a whole: halve)."""
    try:
        shard.retrieve(list(ids), True, False)
        return []
    except Exception as exc:
        if not is_damage(exc):
            raise
        if len(ids) == 1:
            return list(ids)
        mid = len(ids) // 2
        return _unreadable(shard, ids[:mid]) + _unreadable(shard, ids[mid:])


def _scan(shard: Any) -> tuple[list[Any], dict[Any, Any]]:
    """(unreadable ids, {id: payload} of readable payloads deeper than SAFE_DEPTH)."""
    ids = _all_ids(shard)
    broken: list[Any] = []
    too_deep: dict[Any, Any] = {}
    for start in range(0, len(ids), PAGE):
        page = ids[start : start + PAGE]
        bad = _unreadable(shard, page)
        broken.extend(bad)
        unreadable = set(bad)
        good = [i for i in page if i not in unreadable]
        for record in shard.retrieve(good, True, False) if good else []:
            if depth(record.payload) > SAFE_DEPTH:
                too_deep[record.id] = record.payload
    return broken, too_deep


def _sources(shard: Any, ids: Sequence[Any]) -> dict[str, str | None]:
    """metadata.source of each id, from the payload index (their payloads cannot be read)."""
    from qdrant_edge import FacetRequest, FieldCondition, Filter, MatchValue, ScrollRequest

    wanted = set(ids)
    found: dict[str, str | None] = {str(i): None for i in ids}
    try:
        hits = shard.facet(FacetRequest("metadata.source", limit=1_000_000, exact=True)).hits
    except Exception:  # no index on source (a collection made elsewhere): ids only
        return found
    for hit in hits:
        by_source = Filter(
            must=[FieldCondition(key="metadata.source", match=MatchValue(hit.value))]
        )
        offset: Any = None
        while True:
            request = ScrollRequest(
                offset=offset, limit=PAGE, filter=by_source, with_payload=False, with_vector=False
            )
            records, offset = shard.scroll(request)
            found.update((str(r.id), str(hit.value)) for r in records if r.id in wanted)
            if offset is None or not records:
                break
    return found


def _repair_live(shard: Any, report: RepairReport) -> None:
    from qdrant_edge import UpdateOperation

    broken, too_deep = _scan(shard)
    if broken:
        report.removed.update(_sources(shard, broken))
        # The overwrite first: the one write that does not read the old payload.
        shard.update(UpdateOperation.overwrite_payload(broken, {"document": "", "metadata": {}}))
        shard.update(UpdateOperation.delete_points(broken))
    for pid, payload in too_deep.items():
        shard.update(UpdateOperation.overwrite_payload([pid], clip(payload, SAFE_DEPTH)))
        report.clipped.append(str(pid))
    shard.flush()  # moves the log's acknowledged point past the bad entries


def _vector_params(path: Path) -> dict[str, Any]:
    from qdrant_edge import Distance, EdgeVectorParams

    config = json.loads((path / "edge_config.json").read_text())
    return {
        name: EdgeVectorParams(size=int(params["size"]), distance=Distance.Cosine)
        for name, params in (config.get("vectors") or {}).items()
    }


def _rebuild(path: Path, report: RepairReport) -> None:
    """Copy a shard that does not load into a fresh one, reading it without its log."""
    from qdrant_edge import EdgeConfig, EdgeShard, Point, UpdateOperation

    stamp = time.strftime("%Y%m%d-%H%M%S")
    # Beside collections/, not in it: nothing there may look like a collection.
    work = path.parent.parent / "repair" / f"{path.name}-{stamp}"
    readable, fresh = work / "reading", work / "rebuilt"
    work.mkdir(parents=True)
    shutil.copytree(path, readable)
    shutil.rmtree(readable / "wal")  # what was never flushed is lost with the log
    old = EdgeShard.load(str(readable))
    try:
        indexes = {key: info.data_type for key, info in old.info().payload_schema.items()}
        broken, too_deep = _scan(old)
        report.removed.update(_sources(old, broken) if broken else {})
        report.clipped.extend(str(i) for i in too_deep)
        new = EdgeShard.create(str(fresh), EdgeConfig(vectors=_vector_params(path)))
        for key, kind in indexes.items():
            new.update(UpdateOperation.create_field_index(key, kind))
        skip = set(broken)
        ids = [i for i in _all_ids(old) if i not in skip]
        for start in range(0, len(ids), 256):
            points = [
                Point(
                    r.id,
                    r.vector or {},  # every stored point has its vector: asked for with True
                    clip(r.payload, SAFE_DEPTH) if r.id in too_deep else r.payload,
                )
                for r in old.retrieve(ids[start : start + 256], True, True)
            ]
            new.update(UpdateOperation.upsert_points(points))
        new.flush()
        new.close()
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    finally:
        old.close()
        shutil.rmtree(readable, ignore_errors=True)
    report.kept_copy = work / "original"
    path.rename(report.kept_copy)
    fresh.rename(path)


def repair_shard(path: Path) -> RepairReport:
    """Make the collection at ``path`` readable and loadable again; say what it changed."""
    from qdrant_edge import CountRequest, EdgeShard

    report = RepairReport(path.name)
    try:
        shard = EdgeShard.load(str(path))
    except Exception as exc:
        if not is_damage(exc):
            raise
        _rebuild(path, report)
        shard = EdgeShard.load(str(path))
    try:
        _repair_live(shard, report)
        report.points = int(shard.count(CountRequest(exact=True)))
    finally:
        shard.close()
    return report


def repair_collections(data_dir: Path, names: Sequence[str] = ()) -> list[RepairReport]:
    """Repair every embedded collection under ``data_dir`` (or those named).

    Takes the data-dir lock, so it refuses to run beside a server using the same directory.
    """
    from knowledge.datadir import DataDirLock
    from knowledge.errors import InvalidInput
    from knowledge.vectorstore.base import COLLECTION_NAME, check_collection_name

    root = Path(data_dir) / "collections"
    present = sorted(
        p.name
        for p in root.glob("*")
        if COLLECTION_NAME.fullmatch(p.name) and (p / "edge_config.json").is_file()
    )
    for name in names:
        if check_collection_name(name) not in present:
            raise InvalidInput(
                f"No embedded collection {name!r} in {root} (there are: "
                f"{', '.join(present) or 'none'})."
            )
    lock = DataDirLock(Path(data_dir))
    lock.acquire()
    try:
        return [repair_shard(root / name) for name in (names or present)]
    finally:
        lock.release()
