#!/bin/sh
# First command of the README: install what is missing, build, and run the main job on
# the embedded local store: two example checks are stored, analyzed and compared.
# The embedder: BCD_MODEL when set; otherwise, when this build has the libtorch module and
# Debian's python3-torch can export the offline MobileNetV2 ImageNet weights
# (../shared/models), that TorchScript model; otherwise the built-in descriptor.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null

weights=../shared/models/mobilenet_v2_imagenet_dequantized.pth
model=build/models/mobilenet_v2.pt
if [ -z "${BCD_MODEL:-}" ] && [ -f build/lib/libbcd-torch.so ] && [ -f "$weights" ] &&
    /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
    if [ ! -f "$model" ]; then
        mkdir -p build/models
        /usr/bin/python3 models/export_model.py --arch mobilenet_v2 --weights-file "$weights" \
            -o "$model" >/dev/null
    fi
    BCD_MODEL="$PWD/$model"
    BCD_TORCH_MODULE="$PWD/build/lib/libbcd-torch.so"
    export BCD_MODEL BCD_TORCH_MODULE
fi
exec examples/demo.sh "$PWD/build/cli/bcd-cli"
