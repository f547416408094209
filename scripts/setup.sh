#!/usr/bin/env bash
# Set up everything the workflow and its tests need on a fresh Debian/Ubuntu machine:
# ffmpeg (apt), a virtual environment in .venv with the pinned Python packages and the
# avtrust package (editable). Safe to rerun: it does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
            echo "setup: please install '$*' (apt-get install $*), then rerun" >&2
            exit 1
        fi
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
    echo "setup: installing ffmpeg"
    apt_install ffmpeg
fi

python=""
for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        python="$candidate"
        break
    fi
done
if [ -z "$python" ]; then
    echo "setup: Python >= 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $python"
    "$python" -m venv .venv
fi

# Reinstall only when the pinned dependencies changed.
stamp=".venv/.avtrust-deps"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    # torch's build with its CUDA libraries makes .venv about 7 GB; on a fuller disk pip
    # stops half-way with a bare "No space left on device", so say why beforehand.
    free_gb=$(($(df -Pk .venv | awk 'NR == 2 {print $4}') / 1024 / 1024))
    if [ "$free_gb" -lt 8 ]; then
        echo "setup: warning: ${free_gb} GB free where .venv lies; its packages take" \
            "about 7 GB: free some space if the install fails for lack of it" >&2
    fi
    echo "setup: installing pinned Python packages into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    echo "$want" >"$stamp"
fi
echo "setup: ready ($(.venv/bin/snakemake --version | head -1) snakemake, $(ffmpeg -version | head -1 | cut -d' ' -f1-3))"
