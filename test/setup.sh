#!/usr/bin/env bash
# Everything the test suite needs beyond `npm ci`, idempotent and quick when already done:
# the Python side (MagFace converter tests and the exported-model test) and the Kafka broker jars
# (the integration tests start and stop a real single-node KRaft broker themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${FACEPIPE_PYTHON:-python3}"
if ! "$PYTHON" -c 'import numpy, onnx, onnxruntime, PIL, pytest' 2>/dev/null; then
  "$PYTHON" -m pip install --disable-pip-version-check -q -r tools/requirements.txt
fi
bash test/kafka/assemble-kafka.sh
