# Production image: `broadcast serve` on PostgreSQL + Redis (set BROADCAST_DATABASE_URL,
# BROADCAST_REDIS_URL, BROADCAST_SECRET_KEY, BROADCAST_ADMIN_PASSWORD, BROADCAST_MODE=production).
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /srv/broadcast broadcast
WORKDIR /srv/broadcast

COPY pyproject.toml README.md ./
COPY broadcast ./broadcast
COPY audio_assets ./audio_assets
COPY schedules ./schedules
RUN pip install --no-cache-dir '.[online-tts]'

ENV BROADCAST_HOST=0.0.0.0 \
    BROADCAST_PORT=8000 \
    BROADCAST_DATA_DIR=/var/lib/broadcast \
    BROADCAST_ASSET_DIR=/srv/broadcast/audio_assets \
    BROADCAST_AUDIO_STORE_DIR=/var/lib/broadcast/audio
RUN mkdir -p /var/lib/broadcast && chown broadcast /var/lib/broadcast
USER broadcast
VOLUME ["/var/lib/broadcast"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4)" || exit 1
CMD ["broadcast", "serve"]
