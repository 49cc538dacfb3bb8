// Cutout images: decoding FITS (cfitsio), PNG/JPEG (stb_image) and NPY into
// float32 (C, H, W), and writing FITS cubes and 8/16-bit PNGs.
//
// Formats are recognised by their bytes, not their names:
//   FITS  "SIMPLE  =" (or gzip, opened by cfitsio): a 2-D image (1 band) or a
//         3-D cube (NAXIS3 bands); the first HDU with data, or a named
//         extension with cfitsio's syntax "file.fits[NAME]"; any BITPIX,
//         BSCALE/BZERO applied, blank pixels NaN.
//   PNG/JPEG  8- or 16-bit, gray (1 band) or RGB (3 bands; alpha dropped),
//         raw code values 0..255 / 0..65535.
//   NPY   (H, W) or (C, H, W), any numeric dtype.
// Every failure names the file and the reason; dimensions are bounded
// (IO_IMAGE_MAX_*) before anything is allocated.
#ifndef IO_IMAGE_H
#define IO_IMAGE_H

#include <stddef.h>

#define IO_IMAGE_MAX_SIDE 16384
#define IO_IMAGE_MAX_BANDS 64
#define IO_IMAGE_MAX_PIXELS (1L << 24) // per file, all bands: 16 M pixels is far beyond any cutout

typedef struct io_image {
    int c, h, w;
    float *data; // (c, h, w)
} io_image;

enum { IO_FMT_UNKNOWN = 0, IO_FMT_FITS, IO_FMT_PNG, IO_FMT_JPEG, IO_FMT_NPY };

int io_image_read(const char *path, io_image *img);
// Decode from memory (fuzzing, tests); `name` is used in messages.
int io_image_decode(const unsigned char *buf, size_t len, const char *name, io_image *img);
int io_image_sniff(const unsigned char *buf, size_t len);
// Decode as the given IO_FMT_* regardless of the leading bytes (fuzzing one parser).
int io_image_decode_as(const unsigned char *buf, size_t len, const char *name, int fmt, io_image *img);
void io_image_free(io_image *img);

// FITS: float32 (BITPIX -32) image, 2-D when c == 1 else a (c, h, w) cube;
// optional header cards (key, value string, comment), NULL-terminated.
typedef struct io_fits_card {
    const char *key, *value, *comment;
} io_fits_card;
int io_fits_write(const char *path, const io_image *img, const io_fits_card *cards);
// PNG: c = 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA); bit depth 8 or 16; values are clipped to the
// code range and rounded.
int io_png_write(const char *path, const io_image *img, int bit_depth);

// A cfitsio status as an error naming the file and what was being done (clears cfitsio's message stack).
int io_fits_error(const char *name, int status, const char *what);

#endif
