// In-process demux, decode and conversion of one liveness clip with
// FFmpeg's libraries, reproducing what liveness/media's ffmpeg command line
// does (see lav.c). Only libav.go calls it.
#ifndef TRUSTID_LAV_H
#define TRUSTID_LAV_H

#include <stdint.h>

// Results of lav_open and lav_next (negative: errors).
enum {
	LAV_EOF = 0,
	LAV_VIDEO = 1,
	LAV_AUDIO = 2,
	LAV_AUDIO_END = 3, // audio_first: every piece of audio was returned
	LAV_ERR_UNREADABLE = -1,
	LAV_ERR_NOVIDEO = -2,
	LAV_ERR_NOAUDIO = -3,
	LAV_ERR_DIMENSIONS = -4,
	LAV_ERR_INTERNAL = -5,
	LAV_ERR_STOPPED = -6,
};

typedef struct lav_opts {
	const char *video_filters; // e.g. "fps=25,scale=..."
	const char *format_whitelist;
	const char *codec_whitelist;
	int64_t probesize;
	int64_t max_pixels;
	int64_t cap_us; // input duration read (the command line's input -t)
	int max_side;   // the scale filter in video_filters resizes pictures with a larger side
	int video_only;
	// audio_first decodes all the audio before the video (see lav.c), so
	// that the audio can be used while the video decodes.
	int audio_first;
} lav_opts;

typedef struct lav_ctx lav_ctx;

// lav_init quiets the libraries' logging and picks the frame copy for
// this CPU; call it once, before the other calls.
void lav_init(void);
// lav_new prepares a context over data (which must stay valid until
// lav_free); lav_open probes it. *code receives LAV_ERR_* on failure.
lav_ctx *lav_new(const uint8_t *data, int64_t size);
int lav_open(lav_ctx *c, const lav_opts *o);
// lav_next decodes until a converted video frame (LAV_VIDEO), a piece of
// 16 kHz mono s16 audio (LAV_AUDIO), the end of the audio before any video
// frame (LAV_AUDIO_END, audio_first only, unless the video packets did not
// fit the queue), the end (LAV_EOF) or an error.
int lav_next(lav_ctx *c);
// The current video frame's size and a copy of it as packed BGR24.
int lav_width(lav_ctx *c);
int lav_height(lav_ctx *c);
int64_t lav_pts(lav_ctx *c);
// lav_copy_bgr writes all width*height*3 bytes of dst and may write up to
// LAV_DST_PAD more (the scaler's vector stores); it returns 0 or an error.
#define LAV_DST_PAD 1024
int lav_copy_bgr(lav_ctx *c, uint8_t *dst);
// The current audio piece's sample count and a copy of it.
int lav_samples(lav_ctx *c);
void lav_copy_s16(lav_ctx *c, int16_t *dst);
// Streams in the container (the command line treats a single-stream file's
// first frame differently; see libav.go).
int lav_nb_streams(lav_ctx *c);
// lav_stop makes the next blocking call return LAV_ERR_STOPPED (safe from
// another thread).
void lav_stop(lav_ctx *c);
const char *lav_error(lav_ctx *c);
void lav_free(lav_ctx *c);

#endif
