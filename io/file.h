// Whole-file helpers shared by every writer of checkpoints, caches and outputs.
#ifndef IO_FILE_H
#define IO_FILE_H

#include <stddef.h>
#include <stdio.h>

// Write a whole buffer to path atomically (temp + fsync + rename + dir fsync).
int io_write_atomic(const char *path, const void *buf, size_t len);
// Read a whole file (caller frees).
int io_read_file(const char *path, unsigned char **buf, size_t *len);
// The parts of io_write_atomic for streamed writers: a temp file beside path
// (its name in tmp), then flush + fsync + close + rename into place (the temp
// file is removed on any failure).
FILE *io_open_temp(const char *path, char *tmp, size_t tlen);
int io_commit_temp(FILE *f, const char *tmp, const char *path);

// mkdir -p: the directory and its missing parents. *made (may be NULL): how
// many of the path's directories this call created (the deepest ones), so
// that a run that fails may remove them again with io_rmdirs.
int io_mkdirs(const char *path, int *made);
// Remove path and up to levels - 1 of its parents while they are empty.
void io_rmdirs(const char *path, int levels);
// Remove the temp files (NAME.tmp.PID) a killed atomic write left in dir; returns how many.
int io_remove_stale_temps(const char *dir);

// The absolute form of path (relative to the working directory; need not exist): 0, or nonzero.
int io_abs_path(const char *path, char *out, size_t len);
// to (absolute) relative to the directory from (absolute), with "../" steps.
void io_rel_path(const char *from, const char *to, char *out, size_t len);

#endif
