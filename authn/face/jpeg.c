// See jpeg.h and jpeg.go.
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include "jpeg.h"

struct errmgr {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	int warnings;
};

static void on_error(j_common_ptr c) {
	longjmp(((struct errmgr *)c->err)->jump, 1);
}

// on_message counts warnings (level -1) and prints nothing.
static void on_message(j_common_ptr c, int level) {
	if (level < 0)
		((struct errmgr *)c->err)->warnings++;
}
static void no_output(j_common_ptr c) { (void)c; }

static unsigned rd16(const unsigned char *p, int be) { return be ? (p[0] << 8) | p[1] : p[0] | (p[1] << 8); }
static unsigned long rd32(const unsigned char *p, int be) {
	return be ? ((unsigned long)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]
	          : ((unsigned long)p[3] << 24) | (p[2] << 16) | (p[1] << 8) | p[0];
}

// orientation_is_upright reads the Orientation tag (0x0112) of IFD0 of an
// APP1 Exif payload: 1 when the tag is 1 or absent, 0 when it is anything
// else or the payload cannot be read.
static int orientation_is_upright(const unsigned char *p, unsigned long n) {
	if (n < 6 || memcmp(p, "Exif\0\0", 6) != 0)
		return 1; // not Exif (XMP and others): no orientation
	p += 6, n -= 6;
	if (n < 8)
		return 0;
	int be;
	if (p[0] == 'I' && p[1] == 'I')
		be = 0;
	else if (p[0] == 'M' && p[1] == 'M')
		be = 1;
	else
		return 0;
	if (rd16(p + 2, be) != 42)
		return 0;
	unsigned long ifd = rd32(p + 4, be);
	if (ifd < 8 || ifd > n - 2)
		return 0;
	unsigned count = rd16(p + ifd, be);
	if ((unsigned long)count * 12 > n - ifd - 2)
		return 0;
	for (unsigned i = 0; i < count; i++) {
		const unsigned char *e = p + ifd + 2 + 12 * i;
		if (rd16(e, be) != 0x0112)
			continue;
		return rd16(e + 2, be) == 3 && rd32(e + 4, be) == 1 && rd16(e + 8, be) == 1;
	}
	return 1;
}

int trustid_jpeg_bgr(const unsigned char *data, unsigned long n, unsigned char *dst, int *w, int *h) {
	struct jpeg_decompress_struct ci;
	struct errmgr err;
	memset(&err, 0, sizeof err);
	ci.err = jpeg_std_error(&err.pub);
	err.pub.error_exit = on_error;
	err.pub.emit_message = on_message;
	err.pub.output_message = no_output;
	// volatile: read after a longjmp.
	volatile int status = TRUSTID_JPEG_OTHER;
	if (setjmp(err.jump)) {
		jpeg_destroy_decompress(&ci);
		return TRUSTID_JPEG_OTHER;
	}
	jpeg_create_decompress(&ci);
	jpeg_mem_src(&ci, data, n);
	jpeg_save_markers(&ci, JPEG_APP0 + 1, 0xFFFF);
	if (jpeg_read_header(&ci, TRUE) != JPEG_HEADER_OK)
		goto done;
	if (ci.jpeg_color_space != JCS_YCbCr || ci.num_components != 3 || ci.data_precision != 8)
		goto done;
	for (jpeg_saved_marker_ptr m = ci.marker_list; m; m = m->next) {
		if (m->marker == JPEG_APP0 + 1 && !orientation_is_upright(m->data, m->data_length))
			goto done;
	}
	if (!dst) {
		*w = (int)ci.image_width, *h = (int)ci.image_height;
		status = err.warnings ? TRUSTID_JPEG_OTHER : TRUSTID_JPEG_OK;
		goto done;
	}
	if ((int)ci.image_width != *w || (int)ci.image_height != *h)
		goto done;
	ci.out_color_space = JCS_EXT_BGR;
	jpeg_start_decompress(&ci);
	if (ci.output_width != ci.image_width || ci.output_height != ci.image_height || ci.output_components != 3)
		goto done;
	const unsigned long stride = 3ul * ci.output_width;
	while (ci.output_scanline < ci.output_height) {
		JSAMPROW row = dst + stride * ci.output_scanline;
		if (jpeg_read_scanlines(&ci, &row, 1) != 1)
			goto done;
	}
	jpeg_finish_decompress(&ci);
	status = err.warnings ? TRUSTID_JPEG_OTHER : TRUSTID_JPEG_OK;
done:
	jpeg_destroy_decompress(&ci);
	return status;
}
