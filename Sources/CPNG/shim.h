#ifndef ZOO_CPNG_SHIM_H
#define ZOO_CPNG_SHIM_H
// libpng reports errors by longjmp, which Swift cannot catch. These few static functions are the
// only setjmp points: each wraps a libpng call that can fail, stores libpng's message and returns
// -1 instead of jumping into Swift frames. Everything else is called from Sources/Images/PNG.swift.
#include <png.h>
#include <setjmp.h>
#include <string.h>

typedef struct {
    png_structp png;
    png_infop info;
    const unsigned char *data;
    size_t size;
    size_t offset;
    char message[256];
} zoo_png_reader;

static void zoo_png_error_fn(png_structp png, png_const_charp msg) {
    zoo_png_reader *r = (zoo_png_reader *)png_get_error_ptr(png);
    strncpy(r->message, msg ? msg : "unknown libpng error", sizeof r->message - 1);
    r->message[sizeof r->message - 1] = 0;
    png_longjmp(png, 1);
}

static void zoo_png_warning_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void zoo_png_read_fn(png_structp png, png_bytep out, size_t n) {
    zoo_png_reader *r = (zoo_png_reader *)png_get_io_ptr(png);
    if (r->size - r->offset < n) {
        png_error(png, "unexpected end of file (truncated PNG)");
    }
    memcpy(out, r->data + r->offset, n);
    r->offset += n;
}

/// Creates the read structs over `r->data` and reads everything up to the first IDAT (the header).
static inline int zoo_png_open(zoo_png_reader *r) {
    r->message[0] = 0;
    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, zoo_png_error_fn, zoo_png_warning_fn);
    if (!r->png) { strcpy(r->message, "out of memory"); return -1; }
    r->info = png_create_info_struct(r->png);
    if (!r->info) { strcpy(r->message, "out of memory"); return -1; }
    if (setjmp(png_jmpbuf(r->png))) { return -1; }
    png_set_read_fn(r->png, r, zoo_png_read_fn);
    png_read_info(r->png, r->info);
    return 0;
}

/// Applies the transformations set so far and decodes every row into `out` (`stride` bytes a row),
/// interlaced images included. Returns -1 when the row size libpng reports is not `stride`.
static inline int zoo_png_read_rows(zoo_png_reader *r, unsigned char *out, size_t stride, unsigned height) {
    if (setjmp(png_jmpbuf(r->png))) { return -1; }
    int passes = png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    if (png_get_rowbytes(r->png, r->info) != stride) {
        strcpy(r->message, "unexpected row size after transformations");
        return -1;
    }
    for (int pass = 0; pass < passes; pass++) {
        for (unsigned y = 0; y < height; y++) {
            png_read_row(r->png, out + (size_t)y * stride, NULL);
        }
    }
    png_read_end(r->png, NULL);
    return 0;
}

static inline void zoo_png_close(zoo_png_reader *r) {
    if (r->png) { png_destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL); }
    r->png = NULL;
    r->info = NULL;
}
#endif
