// FITS binary-table catalogs: read with cfitsio and handed to the catalog
// parser as CSV text (io/catalog.h), so a FITS catalog is accepted wherever a
// CSV one is (`--catalog cat.fits[1]`, or cat.fits: its first table).
#ifndef IO_FITSTABLE_H
#define IO_FITSTABLE_H

#include <stddef.h>

// Whether a catalog path names a FITS file (.fits, .fit, .fts, optionally [ext]).
int io_is_fits_table(const char *path);
// The table as CSV text (caller frees *text): of the file path (path[N] or path[EXTNAME]
// for one extension, else the first table), or of the memlen bytes at mem when mem is
// not NULL. Header cards must be ASCII; a table that claims more bytes than the file has
// is an error (cfitsio would read past them).
int io_fits_table_csv(const char *path, const void *mem, size_t memlen, char **text, size_t *len);

// Write a catalog as a FITS binary table (atomically): numeric columns as doubles (nulls: NaN),
// the id and text columns as strings.
struct io_catalog;
int io_catalog_write_fits(const struct io_catalog *c, const char *path);

#endif
