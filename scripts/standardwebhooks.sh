#!/usr/bin/env bash
# Installs (pinned, from PyPI) the Standard Webhooks reference library that the tests' webhook
# receiver (scripts/webhook-receiver.py) verifies signatures with, into .tools/.
#
#   scripts/standardwebhooks.sh install   # prints the PYTHONPATH folder
set -euo pipefail

VERSION=1.1.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET="$ROOT/.tools/standardwebhooks-$VERSION"

case "${1:-install}" in
  install)
    if [ ! -f "$TARGET/standardwebhooks/webhooks.py" ]; then
      echo "installing standardwebhooks==$VERSION into $TARGET" >&2
      python3 -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$TARGET" "standardwebhooks==$VERSION" >&2
    fi
    PYTHONPATH="$TARGET" python3 -c 'import standardwebhooks' >&2
    echo "$TARGET"
    ;;
  *) echo "usage: $0 install" >&2; exit 64 ;;
esac
