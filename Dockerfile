# drip: web, supervisor and worker under supervisord, as a non-root user.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DRIP_LOG_FORMAT=json \
    DRIP_REQUIRE_AUTH=true \
    DRIP_CONSOLE_HOST=0.0.0.0 \
    DRIP_REDIS_URL=redis://redis:6379/0 \
    DRIP_DATABASE_URL=postgresql://postgres@postgres:5432/drip \
    DRIP_BIN=/usr/local/bin/drip \
    DRIP_HOST=0.0.0.0 \
    DRIP_PORT=8000

WORKDIR /app
COPY pyproject.toml README.md supervisord.conf ./
COPY db ./db
COPY drip ./drip
RUN pip install . supervisor==4.3.0 \
    && useradd --create-home --uid 10001 drip

USER drip
# 8001: the console and /metrics (it starts once DRIP_CONSOLE_TOKENS is set)
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["supervisord", "-c", "/app/supervisord.conf"]
