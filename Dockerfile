# leadsync worker image: slim Python, non-root, the Celery worker as entry point.
#   docker build -t leadsync .
#   docker run --env-file leadsync.env leadsync                      # worker
#   docker run --env-file leadsync.env --entrypoint leadsync-entrypoint leadsync \
#       celery -A leadsync.tasks beat --schedule /var/lib/leadsync/celerybeat-schedule
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 leadsync \
 && useradd --system --uid 10001 --gid leadsync --home-dir /var/lib/leadsync \
        --create-home --shell /usr/sbin/nologin leadsync \
 && install -d -o leadsync -g leadsync /shared

WORKDIR /opt/leadsync
COPY pyproject.toml README.md ./
COPY leadsync ./leadsync
RUN pip install . && rm -rf build ./*.egg-info

COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/leadsync-entrypoint

USER leadsync:leadsync
WORKDIR /var/lib/leadsync

ENTRYPOINT ["leadsync-entrypoint", "celery", "-A", "leadsync.tasks", "worker"]
CMD ["--loglevel=INFO", "--concurrency=2"]
