# The personalization service (`hyperalign serve`) in a container. Build: docker build -t hyperalign .
# Run with PostgreSQL and its migrations: compose.yaml. No secret is baked in: keys, passwords and the LLM
# endpoint come from the environment at run time.

# --- build: a virtual environment with hyperalign and the serve extra --------------------------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# pyproject.toml names README.md as the package's description.
COPY pyproject.toml README.md ./
COPY src ./src
# This checkout, not a registry package: its dependencies are bounded in pyproject.toml (DL3013 asks for pins).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[serve]"

# --- run: the environment only, as an unprivileged user ------------------------------------------------------------
FROM python:3.11-slim-bookworm AS run
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/hyperalign \
    XDG_STATE_HOME=/var/lib/hyperalign/state \
    XDG_CACHE_HOME=/var/lib/hyperalign/cache \
    XDG_DATA_HOME=/var/lib/hyperalign/data
RUN groupadd --system --gid 10001 hyperalign \
    && useradd --system --uid 10001 --gid hyperalign --home-dir /var/lib/hyperalign --create-home \
       --shell /usr/sbin/nologin hyperalign
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/hyperalign
EXPOSE 8000
# /healthz says healthy or not and nothing else; the slim image has no curl, so Python asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["hyperalign"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
