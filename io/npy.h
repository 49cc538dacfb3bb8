// NPY arrays and NPZ archives (a zip of .npy members, stored or deflated).
// This is galnn's checkpoint and golden-file format; numpy.load opens what we
// write, and we read what numpy.save/savez/savez_compressed write. Every read
// is verified (zip CRC-32, sizes, header syntax, shape vs byte count) and a
// failure names the file, the member and the problem.
#ifndef IO_NPY_H
#define IO_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "file.h" // io_write_atomic, io_read_file (NPY/NPZ files are written through them)

#define IO_MAXDIM 8

typedef enum { IO_F32 = 0, IO_F64, IO_I32, IO_I64, IO_U8 } io_dtype;

typedef struct io_array {
    io_dtype dtype;
    int ndim;
    int64_t shape[IO_MAXDIM];
    size_t n;   // elements
    void *data; // owned when returned by a reader (free with io_array_free)
} io_array;

size_t io_dtype_size(io_dtype t);
const char *io_dtype_name(io_dtype t);
// A view of caller memory (not owned): for writing.
io_array io_array_view(io_dtype t, int ndim, const int64_t *shape, const void *data);
void io_array_free(io_array *a);
// Convert any numeric array to a new float32 buffer (caller frees).
float *io_array_to_f32(const io_array *a);

// In-memory encoding/decoding of one .npy.
int io_npy_encode(const io_array *a, unsigned char **buf, size_t *len);
int io_npy_decode(const unsigned char *buf, size_t len, io_array *out); // error names no file; callers prefix

int io_npy_write(const char *path, const io_array *a); // atomic: temp file, fsync, rename
int io_npy_read(const char *path, io_array *out);

// NPZ writing: members are added one by one, the archive appears atomically
// at close (temp file + fsync + rename). Times are fixed, so the same arrays
// give a byte-identical file.
typedef struct io_npz_writer io_npz_writer;
io_npz_writer *io_npz_create(const char *path, int compress);
int io_npz_add(io_npz_writer *w, const char *name, const io_array *a); // name without ".npy"
int io_npz_add_f32(io_npz_writer *w, const char *name, int ndim, const int *shape, const float *data);
int io_npz_close(io_npz_writer *w); // commit
void io_npz_abort(io_npz_writer *w); // discard the temp file

typedef struct io_npz {
    int n;
    char **names;      // without ".npy"
    io_array *arrays;
} io_npz;

int io_npz_read(const char *path, io_npz *z);
int io_npz_parse(const unsigned char *buf, size_t len, const char *name, io_npz *z); // from memory
const io_array *io_npz_get(const io_npz *z, const char *name);
void io_npz_free(io_npz *z);


#endif
