#!/bin/sh
# Build and run every libFuzzer target in tests/fuzz for FUZZ_SECONDS each
# (default 60), seeded from a small mock survey and the test reference files.
# Prints executions and crashes per target. Needs clang + libclang-rt (make
# fuzz installs them when root).
set -u
SECS=${FUZZ_SECONDS:-60}
B=build/fuzz
mkdir -p $B/seeds
CC=clang
SRC="$(ls common/*.c io/*.c stats/*.c) nn/tensor.c" # io: checkpoints use nn tensors, spectra stats
FLAGS="-g -O1 -std=c11 -D_DEFAULT_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Wno-unknown-pragmas"
# seeds: a 3-galaxy mock survey in every format, and our reference files
if [ ! -d $B/seeds/mock ]; then
    ./bin/galnn mock --out $B/seeds/mock --n 3 --size 16 --png --npy --kinematics >/dev/null || exit 1
fi
for t in fits png jpeg npy npz csv fitstable; do mkdir -p $B/corpus_$t $B/seed_$t; done
cp $B/seeds/mock/cutouts/*.fits $B/seed_fits/
for f in $B/seeds/mock/kin/*.fits; do cp "$f" $B/seed_fits/kin_$(basename "$f"); done
cp $B/seeds/mock/png/*_r.png $B/seed_png/
cp $B/seeds/mock/npy/*.npy $B/seed_npy/
cp tests/data/*.npz $B/seed_npz/
cp $B/seeds/mock/catalog.csv $B/seed_csv/
printf 'id,x,y,z,split\na,1,2,3,train\nb,,nan,-9999,val\n' > $B/seed_csv/small.csv
# a FITS table seed, written with cfitsio
cat > $B/mktab.c <<'EOC'
#include <fitsio.h>
int main(int c, char **v) { fitsfile *f; int s = 0; char *tt[3] = {"id", "x", "v"}, *tf[3] = {"8A", "1E", "2J"};
  char *ids[2] = {"a", "b"}; float x[2] = {1.5f, 2.5f}; int vv[4] = {1, 2, 3, -1}; (void)c;
  fits_create_file(&f, v[1], &s); fits_create_tbl(f, BINARY_TBL, 2, 3, tt, tf, 0, "T", &s);
  fits_write_col(f, TSTRING, 1, 1, 1, 2, ids, &s); fits_write_col(f, TFLOAT, 2, 1, 1, 2, x, &s);
  fits_write_col(f, TINT, 3, 1, 1, 4, vv, &s); fits_close_file(f, &s); return s; }
EOC
gcc -o $B/mktab $B/mktab.c -lcfitsio && rm -f $B/seed_fitstable/t.fits && $B/mktab $B/seed_fitstable/t.fits
# a JPEG seed written by stb_image_write (through a tiny C helper)
cat > $B/mkjpg.c <<'EOC'
#include <stb/stb_image_write.h>
int main(int c, char **v) { unsigned char p[3 * 16 * 16]; for (int i = 0; i < 768; i++) p[i] = (unsigned char)(i * 7);
  (void)c; return !stbi_write_jpg(v[1], 16, 16, 3, p, 80); }
EOC
gcc -o $B/mkjpg $B/mkjpg.c -lstb && $B/mkjpg $B/seed_jpeg/a.jpg
echo "fuzzing each parser for $SECS s"
printf '%-10s %12s %10s %8s\n' target executions exec/s crashes
fail=0
for t in fits png jpeg npy npz csv fitstable; do
    $CC $FLAGS -I/usr/include/$(gcc -print-multiarch)/openblas-openmp -o $B/fuzz_$t tests/fuzz/fuzz_$t.c $SRC \
        -lcfitsio -lstb -lcairo -L/usr/lib/$(gcc -print-multiarch)/openblas-openmp -lopenblas -lz -lm || { echo "build of fuzz_$t failed"; exit 1; }
    log=$B/fuzz_$t.log
    # allocator_may_return_null: a header that asks cfitsio for terabytes gets NULL, as from a real malloc
    ASAN_OPTIONS=allocator_may_return_null=1 $B/fuzz_$t -max_total_time=$SECS -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix=$B/crash_$t- $B/corpus_$t $B/seed_$t >$log 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' $log | grep -o '[0-9]*$')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' $log | grep -o '[0-9]*$')
    crashes=$(ls $B/crash_$t-* 2>/dev/null | wc -l)
    printf '%-10s %12s %10s %8s\n' $t "${runs:-?}" "${rate:-?}" $crashes
    if [ $rc -ne 0 ] || [ $crashes -ne 0 ]; then fail=1; tail -30 $log; fi
done
exit $fail
