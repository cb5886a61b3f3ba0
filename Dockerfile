# One image for the API, the workers and the one-shot migration (docker-compose.yml picks the
# command). CPU only: the engine is Numba on the CPU.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/var/cache/bptt/numba \
    BPTT_DATA_DIR=/var/lib/bptt

WORKDIR /app
COPY pyproject.toml README.md LICENSE alembic.ini ./
COPY bptt ./bptt
COPY service ./service
COPY workers ./workers
COPY migrations ./migrations
# Editable install: the service finds migrations/ beside its package, as in a checkout.
RUN pip install --no-cache-dir -e . \
 && mkdir -p "$NUMBA_CACHE_DIR" "$BPTT_DATA_DIR" \
 # Compile every kernel at build time, so a new worker container starts warm.
 && python -c "import bptt; bptt.warm_kernels()"

RUN useradd --system --home /app bptt && chown -R bptt "$NUMBA_CACHE_DIR" "$BPTT_DATA_DIR"
USER bptt
EXPOSE 8000
CMD ["bptt", "api", "--host", "0.0.0.0", "--port", "8000"]
