# One image for every orderflow process; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY infra infra
COPY workflows workflows
COPY activities activities
COPY meituan meituan
COPY analytics analytics
COPY workers workers
COPY starter starter
COPY migrations migrations
COPY policy.example.toml ./
RUN pip install --no-cache-dir -e . \
    && mkdir /var/lib/orderflow && chown nobody /var/lib/orderflow  # the reports (compose's volume)
USER nobody
