#!/bin/sh
# Fusion check: photometry alone (ugriz_mlp.cfg) against the two-branch preset (ugriz_cnn_mlp.cfg), both
# without spec-z, 3 seeds, on a galnn mock survey: sh tools/fusion.sh SURVEY_DIR [WORK_DIR]
# (make one with: ./bin/galnn mock --out SURVEY_DIR --n 3000 --seed 11). Prints the test-split rows.
set -eu
S=$1; W=${2:-build/fusion}; B=./bin/galnn
COLS="branch.phot.columns=mag_u,mag_g,mag_r,mag_i,mag_z,ebv"
mkdir -p "$W"
for s in 1 2 3; do
  $B train --config models/ugriz_mlp.cfg --catalog "$S/catalog.csv" --out "$W/mlp$s" $COLS \
     train.seed=$s >/dev/null
  echo "ugriz_mlp seed $s: $($B eval --ckpt "$W/mlp$s/best.npz" --split test | grep '  all')"
  $B train --config models/ugriz_cnn_mlp.cfg --catalog "$S/catalog.csv" --images "$S/cutouts/{id}.fits" \
     --out "$W/cnn$s" $COLS train.seed=$s >/dev/null
  echo "ugriz_cnn_mlp seed $s: $($B eval --ckpt "$W/cnn$s/best.npz" --split test | grep '  all')"
  one=$($B eval --ckpt "$W/cnn$s/best.npz" --split test --no-tta | grep '  all')
  echo "ugriz_cnn_mlp --no-tta seed $s: $one"
done
