# One image for every orderflow process; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The dependencies exactly as locked (make lock), each file checked against its hashes; not the
# local extra (the embedded PostgreSQL and the Temporal servers are for the local stack only).
COPY requirements/main.txt requirements/main.txt
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/main.txt
# Tracing's packages (the `otel` extra, infra/tracing.py) only when asked for:
# `docker compose build --build-arg TRACING=yes`, then OTEL_EXPORTER_OTLP_ENDPOINT turns it on.
ARG TRACING=no
COPY requirements/otel.txt requirements/otel.txt
RUN if [ "$TRACING" = yes ]; then \
        pip install --no-cache-dir --require-hashes --no-deps -r requirements/otel.txt; fi
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY infra infra
COPY meituan meituan
COPY activities activities
COPY workflows workflows
COPY analytics analytics
COPY workers workers
COPY starter starter
COPY migrations migrations
COPY policy.example.toml ./
# The reports' folder is compose's volume, written by the image's user.
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . && pip check \
    && mkdir /var/lib/orderflow && chown nobody /var/lib/orderflow
USER nobody
