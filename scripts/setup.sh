#!/usr/bin/env bash
# Installs the system packages gradless needs on Debian/Ubuntu; does nothing when they are
# already there. mesa-vulkan-drivers: lavapipe, the software Vulkan driver wgpu runs on
# when there is no GPU. cmake and libsdl2-gfx-dev: building the gym-rs crate (SDL2).
# fonts-dejavu-core: the font of the learning curves' PNG text. python3-venv: the virtual
# environment scripts/test.sh runs the Python package's tests in. ffmpeg: MP4 videos
# (`record --format mp4`).
set -euo pipefail

packages=(mesa-vulkan-drivers cmake libsdl2-gfx-dev fonts-dejavu-core python3-venv ffmpeg)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup: system packages already installed (${packages[*]})" >&2
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
    sudo="sudo"
fi
echo "setup: installing ${missing[*]}" >&2
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
