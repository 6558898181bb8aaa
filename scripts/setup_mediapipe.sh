#!/usr/bin/env bash
# The MediaPipe baseline venv (.venv-mediapipe): mediapipe 0.10.21 (legacy mp.solutions.pose) for
# the front-end benchmark (make bench-2d). Kept apart from .venv: mediapipe pins numpy<2 and its own
# OpenCV. Idempotent: skipped when requirements/mediapipe.txt is unchanged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv-mediapipe"
STAMP="$VENV/.setup-hash"
PYTHON="${PYTHON:-python3}"

want="$(sha256sum requirements/mediapipe.txt | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c 'import mediapipe' 2>/dev/null; then
  exit 0
fi
echo "[setup-mediapipe] creating $VENV (mediapipe 0.10.21)"
"$PYTHON" -m venv "$VENV"
echo '*' > "$VENV/.gitignore"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q -r requirements/mediapipe.txt
"$VENV/bin/python" -c 'import mediapipe as mp; mp.solutions.pose.Pose; print("[setup-mediapipe] mediapipe", mp.__version__)'
echo "$want" > "$STAMP"
