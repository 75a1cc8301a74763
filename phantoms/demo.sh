#!/usr/bin/env bash
# The main job end to end: simulate a brain-like phantom (8 coils, 4× equispaced, analytic
# k-space, noise scan) as ISMRMRD, inspect it, and reconstruct it with the default protocol
# (ESPIRiT + CG-SENSE) to NIfTI. Outputs land in ./out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps
cargo build --release -p basin-cli
mkdir -p out
B=target/release/basin
$B phantom --kind brain --matrix 256 --coils 8 --accel 4 --center-fraction 0.08 --mask equispaced --seed 1 -o out/phantom.h5 --force
$B info out/phantom.h5
$B recon out/phantom.h5 -o out/phantom.nii.gz --force
$B recon out/phantom.h5 -o out/phantom-zero-filled.nii.gz --protocol zero-filled --force
echo "images: out/phantom.nii.gz (CG-SENSE), out/phantom-zero-filled.nii.gz (zero-filled)"
