#!/bin/sh
# Container entry point: optionally load an environment file (e.g. the sandbox's
# /shared/sandbox.env, written at its start), then run the given command in place of this shell.
set -eu
if [ -n "${LEADSYNC_ENV_FILE:-}" ]; then
  waited=0
  while [ ! -s "$LEADSYNC_ENV_FILE" ] && [ "$waited" -lt "${LEADSYNC_ENV_FILE_WAIT:-60}" ]; do
    sleep 1; waited=$((waited + 1))
  done
  if [ ! -s "$LEADSYNC_ENV_FILE" ]; then
    echo "leadsync: LEADSYNC_ENV_FILE=$LEADSYNC_ENV_FILE does not exist or is empty" >&2
    exit 2
  fi
  set -a
  # shellcheck disable=SC1090
  . "$LEADSYNC_ENV_FILE"
  set +a
fi
exec "$@"
