// See lav.h. The filter graphs are the ones the ffmpeg 5.1 command line
// builds for liveness/media's arguments, so that the frames and samples are
// byte for byte those of the ffmpeg child process (libav_test.go checks it):
//   video: buffer -> [autorotate] -> trim=duration=cap -> fps=..,scale=..
//          -> format=rgb24 -> buffersink, scaler flags "bicubic", the channels
//          swapped to BGR as the frame is copied out (lav_copy_bgr);
//          or, for 4:2:0 pictures the scale filter would not resize,
//          without the format filter (the scale filter then passes them
//          through) and lav_copy_bgr converts them straight to BGR24 in
//          the caller's memory with a scaler set up as the scale filter
//          sets up its own: one conversion instead of a conversion, a
//          swap and a copy. swscale's unscaled BGR24 and RGB24 converters
//          are mirror images, so the bytes are the same.
//   audio: abuffer -> atrim=duration=cap
//          -> aformat=sample_fmts=s16:sample_rates=16000:channel_layouts=mono
//          -> abuffersink
// with packet timestamps shifted by the container's start time, as the
// command line does without -copyts.
//
// With lav_opts.audio_first, the demuxer first reads the whole input,
// decoding the audio and queueing the video packets, and lav_next reports
// LAV_AUDIO_END once the audio is out; then the queued video is decoded.
// Each stream's decoder and graph see the same packets in the same order as
// when the two are interleaved, so the frames and samples are the same; so
// is the first error (a demuxing error waits until the video packets read
// before it are decoded).
#include "lav.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#define AVIO_BUF 65536
// The most video packets queued in audio-first mode (a 60 fps capture of
// the longest clip has ~500); past it the streams are decoded interleaved,
// so a file of tiny packets cannot make the queue large.
#define MAX_QUEUE 4096

struct lav_ctx {
	const uint8_t *data;
	int64_t size, pos;
	int stop;

	lav_opts o;
	AVFormatContext *fmt;
	AVIOContext *avio;
	int vidx, aidx;
	AVCodecContext *vdec, *adec;
	AVFilterGraph *vgraph, *agraph;
	AVFilterContext *vsrc, *vsink, *asrc, *asink;
	int vw, vh, vfmt; // the video graph's input
	// The end of the last frame fed to each graph (stream time base for
	// video, 1/sample_rate for audio): the command line closes the graph's
	// input at that time, which decides the fps filter's last frame.
	int64_t vend, aend;
	AVPacket *pkt;
	AVFrame *dec, *out;
	int demux_eof, vsink_eof, asink_eof;
	// Audio-first mode: queue holds the video packets read while
	// collecting (qpos is the next to decode); read_eof is the demuxer's
	// end; aflushed, the audio flushed at it before any video was decoded
	// (audio_end: LAV_AUDIO_END returned); pending, a demuxing error
	// deferred until the queued packets are decoded.
	AVPacket **queue;
	int qlen, qpos, collecting, read_eof, aflushed, audio_end, pending;
	// direct: the video graph stops before the conversion, which sws
	// does into lav_copy_bgr's destination (the colour details set for
	// sws_space and sws_range).
	int direct;
	struct SwsContext *sws;
	int sws_space, sws_range;
	char err[256];
};

static int read_packet(void *opaque, uint8_t *buf, int n) {
	lav_ctx *c = opaque;
	int64_t left = c->size - c->pos;
	if (left <= 0)
		return AVERROR_EOF;
	if (n > left)
		n = (int)left;
	memcpy(buf, c->data + c->pos, n);
	c->pos += n;
	return n;
}

static int64_t seek(void *opaque, int64_t off, int whence) {
	lav_ctx *c = opaque;
	int64_t p;
	switch (whence & ~AVSEEK_FORCE) {
	case AVSEEK_SIZE:
		return c->size;
	case SEEK_SET:
		p = off;
		break;
	case SEEK_CUR:
		p = c->pos + off;
		break;
	case SEEK_END:
		p = c->size + off;
		break;
	default:
		return AVERROR(EINVAL);
	}
	if (p < 0 || p > c->size)
		return AVERROR(EINVAL);
	c->pos = p;
	return p;
}

static int interrupted(void *opaque) {
	lav_ctx *c = opaque;
	return __atomic_load_n(&c->stop, __ATOMIC_RELAXED);
}

void lav_stop(lav_ctx *c) { __atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED); }

static int fail(lav_ctx *c, int code, const char *what, int averr) {
	if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED))
		code = LAV_ERR_STOPPED;
	if (averr < 0) {
		char e[128];
		av_strerror(averr, e, sizeof e);
		snprintf(c->err, sizeof c->err, "%s: %s", what, e);
	} else {
		snprintf(c->err, sizeof c->err, "%s", what);
	}
	return code;
}

const char *lav_error(lav_ctx *c) { return c->err; }

typedef void (*swap_fn)(uint8_t *, const uint8_t *, int);
static swap_fn pick_swap(void);
// swap_rgb is the fastest row swap this CPU runs (set by lav_init).
static swap_fn swap_rgb;

void lav_init(void) {
	// The libraries' own log lines would go to the service's stderr
	// unstructured; the error that matters comes back through lav_error.
	av_log_set_level(AV_LOG_QUIET);
	swap_rgb = pick_swap();
}

lav_ctx *lav_new(const uint8_t *data, int64_t size) {
	lav_ctx *c = av_mallocz(sizeof *c);
	if (!c)
		return NULL;
	c->data = data;
	c->size = size;
	c->vidx = c->aidx = -1;
	c->vfmt = -1;
	return c;
}

static int open_decoder(lav_ctx *c, AVStream *st, AVCodecContext **out) {
	const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
	if (!codec)
		return fail(c, LAV_ERR_UNREADABLE, "no decoder for the stream", 0);
	AVCodecContext *d = avcodec_alloc_context3(codec);
	if (!d)
		return fail(c, LAV_ERR_INTERNAL, "decoder context", AVERROR(ENOMEM));
	*out = d;
	int r = avcodec_parameters_to_context(d, st->codecpar);
	if (r < 0)
		return fail(c, LAV_ERR_UNREADABLE, "decoder parameters", r);
	d->pkt_timebase = st->time_base;
	AVDictionary *opts = NULL;
	av_dict_set(&opts, "codec_whitelist", c->o.codec_whitelist, 0);
	av_dict_set_int(&opts, "max_pixels", c->o.max_pixels, 0);
	// One thread: requests run in parallel instead, and a frame-threaded
	// decoder would hold frames back.
	av_dict_set(&opts, "threads", "1", 0);
	r = avcodec_open2(d, codec, &opts);
	av_dict_free(&opts);
	if (r < 0)
		return fail(c, LAV_ERR_UNREADABLE, "open decoder (codec not accepted?)", r);
	return 0;
}

int lav_open(lav_ctx *c, const lav_opts *o) {
	c->o = *o;
	uint8_t *buf = av_malloc(AVIO_BUF);
	if (!buf)
		return fail(c, LAV_ERR_INTERNAL, "avio buffer", AVERROR(ENOMEM));
	c->avio = avio_alloc_context(buf, AVIO_BUF, 0, c, read_packet, NULL, seek);
	if (!c->avio) {
		av_free(buf);
		return fail(c, LAV_ERR_INTERNAL, "avio context", AVERROR(ENOMEM));
	}
	c->fmt = avformat_alloc_context();
	if (!c->fmt)
		return fail(c, LAV_ERR_INTERNAL, "format context", AVERROR(ENOMEM));
	c->fmt->pb = c->avio;
	c->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
	c->fmt->interrupt_callback.callback = interrupted;
	c->fmt->interrupt_callback.opaque = c;
	AVDictionary *opts = NULL;
	av_dict_set(&opts, "format_whitelist", o->format_whitelist, 0);
	av_dict_set(&opts, "codec_whitelist", o->codec_whitelist, 0);
	av_dict_set(&opts, "protocol_whitelist", "none", 0);
	av_dict_set_int(&opts, "probesize", o->probesize, 0);
	av_dict_set_int(&opts, "analyzeduration", o->probesize, 0);
	int r = avformat_open_input(&c->fmt, NULL, NULL, &opts);
	av_dict_free(&opts);
	if (r < 0) {
		c->fmt = NULL; // freed by avformat_open_input on failure
		return fail(c, LAV_ERR_UNREADABLE, "open input (container not accepted?)", r);
	}
	r = avformat_find_stream_info(c->fmt, NULL);
	if (r < 0)
		return fail(c, LAV_ERR_UNREADABLE, "stream info", r);
	for (unsigned i = 0; i < c->fmt->nb_streams; i++) {
		enum AVMediaType t = c->fmt->streams[i]->codecpar->codec_type;
		if (t == AVMEDIA_TYPE_VIDEO && c->vidx < 0)
			c->vidx = (int)i;
		if (t == AVMEDIA_TYPE_AUDIO && c->aidx < 0)
			c->aidx = (int)i;
	}
	if (c->vidx < 0)
		return fail(c, LAV_ERR_NOVIDEO, "no video stream", 0);
	if (c->aidx < 0 && !o->video_only)
		return fail(c, LAV_ERR_NOAUDIO, "no audio stream", 0);
	if (o->video_only)
		c->aidx = -1;
	AVCodecParameters *vp = c->fmt->streams[c->vidx]->codecpar;
	if ((int64_t)vp->width * vp->height > o->max_pixels)
		return fail(c, LAV_ERR_DIMENSIONS, "picture larger than the pixel limit", 0);
	if ((r = open_decoder(c, c->fmt->streams[c->vidx], &c->vdec)) < 0)
		return r;
	if (c->aidx >= 0 && (r = open_decoder(c, c->fmt->streams[c->aidx], &c->adec)) < 0)
		return r;
	c->pkt = av_packet_alloc();
	c->dec = av_frame_alloc();
	c->out = av_frame_alloc();
	if (!c->pkt || !c->dec || !c->out)
		return fail(c, LAV_ERR_INTERNAL, "frames", AVERROR(ENOMEM));
	if (c->aidx < 0)
		c->asink_eof = 1;
	if (o->audio_first && c->aidx >= 0) {
		c->queue = av_calloc(MAX_QUEUE + 1, sizeof *c->queue);
		if (!c->queue)
			return fail(c, LAV_ERR_INTERNAL, "packet queue", AVERROR(ENOMEM));
		c->collecting = 1;
	}
	return 0;
}

// rotation is the command line's get_rotation (fftools/cmdutils.c).
static double rotation(const int32_t *m) {
	double theta = 0;
	if (m)
		theta = -round(av_display_rotation_get(m));
	theta -= 360 * floor(theta / 360 + 0.9 / 360);
	return theta;
}

// autorotate is the command line's default -autorotate: the filters that
// turn a phone's rotated recording upright.
static void autorotate(AVStream *st, char *dst, size_t n) {
	const int32_t *m = (const int32_t *)av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, NULL);
	double theta = rotation(m);
	dst[0] = 0;
	if (fabs(theta - 90) < 1.0)
		snprintf(dst, n, "transpose=%s,", m[3] > 0 ? "cclock_flip" : "clock");
	else if (fabs(theta - 180) < 1.0)
		snprintf(dst, n, "%s%s", m[0] < 0 ? "hflip," : "", m[4] < 0 ? "vflip," : "");
	else if (fabs(theta - 270) < 1.0)
		snprintf(dst, n, "transpose=%s,", m[3] < 0 ? "clock_flip" : "cclock");
	else if (fabs(theta) > 1.0)
		snprintf(dst, n, "rotate=%f,", theta * M_PI / 180);
	else if (m && m[4] < 0)
		snprintf(dst, n, "vflip,");
}

// graph links src -> desc -> sink in a new graph with one thread.
static int graph(lav_ctx *c, AVFilterGraph **g, AVFilterContext **src, AVFilterContext **sink,
                 const char *srcname, const char *srcargs, const char *sinkname, const char *desc) {
	*g = avfilter_graph_alloc();
	if (!*g)
		return fail(c, LAV_ERR_INTERNAL, "filter graph", AVERROR(ENOMEM));
	(*g)->nb_threads = 1;
	(*g)->scale_sws_opts = av_strdup("flags=bicubic");
	int r = avfilter_graph_create_filter(src, avfilter_get_by_name(srcname), "in", srcargs, NULL, *g);
	if (r < 0)
		return fail(c, LAV_ERR_INTERNAL, "filter source", r);
	r = avfilter_graph_create_filter(sink, avfilter_get_by_name(sinkname), "out", NULL, NULL, *g);
	if (r < 0)
		return fail(c, LAV_ERR_INTERNAL, "filter sink", r);
	AVFilterInOut *outs = avfilter_inout_alloc(), *ins = avfilter_inout_alloc();
	if (!outs || !ins) {
		avfilter_inout_free(&outs);
		avfilter_inout_free(&ins);
		return fail(c, LAV_ERR_INTERNAL, "filter pads", AVERROR(ENOMEM));
	}
	outs->name = av_strdup("in");
	outs->filter_ctx = *src;
	ins->name = av_strdup("out");
	ins->filter_ctx = *sink;
	r = avfilter_graph_parse_ptr(*g, desc, &ins, &outs, NULL);
	avfilter_inout_free(&outs);
	avfilter_inout_free(&ins);
	if (r < 0)
		return fail(c, LAV_ERR_INTERNAL, "filter graph parse", r);
	if ((r = avfilter_graph_config(*g, NULL)) < 0)
		return fail(c, LAV_ERR_INTERNAL, "filter graph config", r);
	return 0;
}

static int video_graph(lav_ctx *c, const AVFrame *f) {
	AVStream *st = c->fmt->streams[c->vidx];
	AVRational tb = st->time_base, sar = f->sample_aspect_ratio;
	if (st->sample_aspect_ratio.num)
		sar = st->sample_aspect_ratio;
	if (sar.den == 0)
		sar = (AVRational){0, 1};
	char args[512], rot[64], desc[1024];
	int n = snprintf(args, sizeof args, "video_size=%dx%d:pix_fmt=%d:time_base=%d/%d:pixel_aspect=%d/%d",
	                 f->width, f->height, f->format, tb.num, tb.den, sar.num, sar.den);
	AVRational fr = av_guess_frame_rate(c->fmt, st, NULL);
	if (fr.num && fr.den)
		snprintf(args + n, sizeof args - n, ":frame_rate=%d/%d", fr.num, fr.den);
	autorotate(st, rot, sizeof rot);
	// The scale filter resizes only a picture with a side over max_side
	// (transposing keeps the larger side and the pixel format); rotate=
	// may change the pixel format before it.
	// Only 4:2:0 pictures of an even height go direct: swscale converts
	// them with its unscaled converters, whose output is checked the same
	// (libav_test.go); on its general path (an odd height) the bytes
	// differ from the scale filter's.
	c->direct = FFMAX(f->width, f->height) <= c->o.max_side && !strstr(rot, "rotate=") &&
	            (f->format == AV_PIX_FMT_YUV420P || f->format == AV_PIX_FMT_YUVJ420P) && f->height % 2 == 0;
	if (c->direct) {
		snprintf(desc, sizeof desc, "%strim=durationi=%lld,%s", rot, (long long)c->o.cap_us, c->o.video_filters);
	} else {
		// rgb24 as the command line converts to (bgr24 straight from
		// YUV rounds differently when scaling); lav_copy_bgr swaps the
		// channels while it copies the frame out.
		snprintf(desc, sizeof desc, "%strim=durationi=%lld,%s,format=rgb24", rot, (long long)c->o.cap_us, c->o.video_filters);
	}
	c->vw = f->width;
	c->vh = f->height;
	c->vfmt = f->format;
	return graph(c, &c->vgraph, &c->vsrc, &c->vsink, "buffer", args, "buffersink", desc);
}

static int audio_graph(lav_ctx *c, const AVFrame *f) {
	char args[512], layout[128] = "", desc[512];
	int n = snprintf(args, sizeof args, "time_base=1/%d:sample_rate=%d:sample_fmt=%s",
	                 f->sample_rate, f->sample_rate, av_get_sample_fmt_name(f->format));
	if (av_channel_layout_check(&f->ch_layout) && f->ch_layout.order != AV_CHANNEL_ORDER_UNSPEC &&
	    av_channel_layout_describe(&f->ch_layout, layout, sizeof layout) > 0)
		snprintf(args + n, sizeof args - n, ":channel_layout=%s", layout);
	else
		snprintf(args + n, sizeof args - n, ":channels=%d", f->ch_layout.nb_channels);
	snprintf(desc, sizeof desc, "atrim=durationi=%lld,aformat=sample_fmts=s16:sample_rates=16000:channel_layouts=mono",
	         (long long)c->o.cap_us);
	return graph(c, &c->agraph, &c->asrc, &c->asink, "abuffer", args, "abuffersink", desc);
}

// feed sends the frames dec has ready into the stream's filter graph.
static int feed(lav_ctx *c, int video) {
	AVCodecContext *d = video ? c->vdec : c->adec;
	AVStream *st = c->fmt->streams[video ? c->vidx : c->aidx];
	for (;;) {
		int r = avcodec_receive_frame(d, c->dec);
		if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
			return 0;
		if (r < 0) {
			// A damaged packet: the command line logs it and goes on.
			return 0;
		}
		AVFrame *f = c->dec;
		if (video) {
			f->pts = f->best_effort_timestamp;
			if (f->pts != AV_NOPTS_VALUE) {
				int64_t dur = f->pkt_duration;
				if (dur <= 0) {
					AVRational fr = av_guess_frame_rate(c->fmt, st, NULL);
					dur = fr.num > 0 ? av_rescale_q(1, av_inv_q(fr), st->time_base) : 0;
				}
				c->vend = f->pts + dur;
			}
			if (!c->vgraph) {
				if ((int64_t)f->width * f->height > c->o.max_pixels)
					return fail(c, LAV_ERR_DIMENSIONS, "picture larger than the pixel limit", 0);
				if ((r = video_graph(c, f)) < 0)
					return r;
			} else if (f->width != c->vw || f->height != c->vh || f->format != c->vfmt) {
				av_frame_unref(f);
				return fail(c, LAV_ERR_DIMENSIONS, "frame size changed within the clip", 0);
			}
			r = av_buffersrc_add_frame(c->vsrc, f);
		} else {
			if (f->pts != AV_NOPTS_VALUE) {
				f->pts = av_rescale_q(f->pts, st->time_base, (AVRational){1, f->sample_rate});
				c->aend = f->pts + f->nb_samples;
			}
			if (!c->agraph && (r = audio_graph(c, f)) < 0)
				return r;
			r = av_buffersrc_add_frame(c->asrc, f);
		}
		av_frame_unref(f);
		if (r < 0)
			return fail(c, LAV_ERR_INTERNAL, "filter input", r);
	}
}

static int flush(lav_ctx *c, int video) {
	AVCodecContext *d = video ? c->vdec : c->adec;
	avcodec_send_packet(d, NULL);
	int r = feed(c, video);
	if (r < 0)
		return r;
	AVFilterContext *src = video ? c->vsrc : c->asrc;
	if (src && (r = av_buffersrc_close(src, video ? c->vend : c->aend, AV_BUFFERSRC_FLAG_PUSH)) < 0)
		return fail(c, LAV_ERR_INTERNAL, "filter flush", r);
	if (!src) {
		if (video)
			c->vsink_eof = 1;
		else
			c->asink_eof = 1;
	}
	return 0;
}

// next_packet puts the next packet to decode in c->pkt and returns 1, or 0
// when every packet was read and decoded, or 2 when the audio was flushed
// early (the sinks are to be drained), or an error. Audio-first mode
// queues the video packets while collecting and hands out the queued ones
// before reading on.
static int next_packet(lav_ctx *c) {
	for (;;) {
		if (!c->collecting && c->qpos < c->qlen) {
			av_packet_move_ref(c->pkt, c->queue[c->qpos]);
			av_packet_free(&c->queue[c->qpos]);
			c->qpos++;
			return 1;
		}
		if (c->pending)
			return c->pending;
		if (c->read_eof)
			return 0;
		int r = av_read_frame(c->fmt, c->pkt);
		if (r == AVERROR_EOF || (r < 0 && avio_feof(c->fmt->pb))) {
			c->read_eof = 1;
			if (c->collecting) {
				// The audio is all read: out with it before the video.
				c->collecting = 0;
				c->aflushed = 1;
				if ((r = flush(c, 0)) < 0)
					return r;
				return 2;
			}
			continue;
		}
		if (r < 0) {
			r = fail(c, LAV_ERR_UNREADABLE, "read", r);
			if (!c->collecting)
				return r;
			c->collecting = 0;
			c->pending = r;
			continue;
		}
		int video = c->pkt->stream_index == c->vidx;
		if (!video && c->pkt->stream_index != c->aidx) {
			av_packet_unref(c->pkt);
			continue;
		}
		AVStream *st = c->fmt->streams[c->pkt->stream_index];
		if (c->fmt->start_time != AV_NOPTS_VALUE) {
			// The command line's ts_offset: the clip starts at 0.
			int64_t off = av_rescale_q(-c->fmt->start_time, AV_TIME_BASE_Q, st->time_base);
			if (c->pkt->pts != AV_NOPTS_VALUE)
				c->pkt->pts += off;
			if (c->pkt->dts != AV_NOPTS_VALUE)
				c->pkt->dts += off;
		}
		if (video && c->collecting) {
			AVPacket *q = av_packet_alloc();
			if (!q)
				return fail(c, LAV_ERR_INTERNAL, "packet queue", AVERROR(ENOMEM));
			av_packet_move_ref(q, c->pkt);
			c->queue[c->qlen++] = q;
			if (c->qlen == MAX_QUEUE)
				c->collecting = 0; // decode what is queued, then interleaved
			continue;
		}
		return 1;
	}
}

int lav_next(lav_ctx *c) {
	for (;;) {
		if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED))
			return fail(c, LAV_ERR_STOPPED, "stopped", 0);
		av_frame_unref(c->out);
		if (c->vsink && !c->vsink_eof) {
			int r = av_buffersink_get_frame(c->vsink, c->out);
			if (r >= 0)
				return LAV_VIDEO;
			if (r == AVERROR_EOF)
				c->vsink_eof = 1;
			else if (r != AVERROR(EAGAIN))
				return fail(c, LAV_ERR_INTERNAL, "video filter", r);
		}
		if (c->asink && !c->asink_eof) {
			int r = av_buffersink_get_frame(c->asink, c->out);
			if (r >= 0)
				return LAV_AUDIO;
			if (r == AVERROR_EOF)
				c->asink_eof = 1;
			else if (r != AVERROR(EAGAIN))
				return fail(c, LAV_ERR_INTERNAL, "audio filter", r);
		}
		if (c->vsink_eof && c->asink_eof)
			return LAV_EOF;
		if (c->aflushed && c->asink_eof && !c->audio_end) {
			c->audio_end = 1;
			return LAV_AUDIO_END;
		}
		if (c->demux_eof) {
			// Every frame was flushed into the graphs and the sinks are
			// drained; a graph never built (no frame decoded) is done.
			if (!c->vsink)
				c->vsink_eof = 1;
			if (!c->asink)
				c->asink_eof = 1;
			if (c->vsink_eof && c->asink_eof)
				return LAV_EOF;
			continue;
		}
		int r = next_packet(c);
		if (r < 0)
			return r;
		if (r == 2)
			continue;
		if (r == 0) {
			c->demux_eof = 1;
			if ((r = flush(c, 1)) < 0)
				return r;
			if (c->adec && !c->aflushed && (r = flush(c, 0)) < 0)
				return r;
			continue;
		}
		int video = c->pkt->stream_index == c->vidx;
		r = avcodec_send_packet(video ? c->vdec : c->adec, c->pkt);
		av_packet_unref(c->pkt);
		if (r < 0 && r != AVERROR(EAGAIN) && r != AVERROR_INVALIDDATA)
			return fail(c, LAV_ERR_UNREADABLE, "decode", r);
		if ((r = feed(c, video)) < 0)
			return r;
	}
}

int lav_width(lav_ctx *c) { return c->out->width; }
int lav_height(lav_ctx *c) { return c->out->height; }
int64_t lav_pts(lav_ctx *c) { return c->out->pts; }
int lav_nb_streams(lav_ctx *c) { return c->fmt ? (int)c->fmt->nb_streams : 0; }

// swap_row copies n RGB24 bytes (a whole number of pixels) from s to d as
// BGR24.
static void swap_row(uint8_t *d, const uint8_t *s, int n) {
	for (int i = 0; i + 3 <= n; i += 3) {
		d[i] = s[i + 2];
		d[i + 1] = s[i + 1];
		d[i + 2] = s[i];
	}
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <tmmintrin.h>

// swap_row_ssse3 is swap_row five pixels per shuffle: each 16-byte load
// holds five whole pixels and one byte of the next, which the next store
// rewrites; the last pixels (fewer than 16 bytes left) go one at a time.
__attribute__((target("ssse3"))) static void swap_row_ssse3(uint8_t *d, const uint8_t *s, int n) {
	const __m128i m = _mm_setr_epi8(2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9, 14, 13, 12, 15);
	int i = 0;
	for (; i + 16 <= n; i += 15)
		_mm_storeu_si128((__m128i *)(d + i), _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(s + i)), m));
	swap_row(d + i, s + i, n - i);
}

static swap_fn pick_swap(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("ssse3") ? swap_row_ssse3 : swap_row;
}
#else
static swap_fn pick_swap(void) { return swap_row; }
#endif

// parse_yuv_type is the scale filter's (libavfilter/vf_scale.c) for its
// default in_color_matrix "auto": the frame's colour space's coefficients,
// BT.601 for an unknown one.
static const int *yuv_coefficients(enum AVColorSpace space) {
	if (space < 1 || space > 10 || space == 8)
		space = AVCOL_SPC_BT470BG;
	return sws_getCoefficients(space);
}

// convert_bgr is the scale filter's conversion of f (scaler flags
// "bicubic", MPEG-2 chroma siting for yuv420p, colour details from the
// frame) to packed BGR24 at dst, which has LAV_DST_PAD bytes to spare.
static int convert_bgr(lav_ctx *c, const AVFrame *f, uint8_t *dst) {
	if (!c->sws) {
		struct SwsContext *s = sws_alloc_context();
		if (!s)
			return -1;
		c->sws = s;
		av_opt_set_int(s, "srcw", f->width, 0);
		av_opt_set_int(s, "srch", f->height, 0);
		av_opt_set_int(s, "src_format", f->format, 0);
		av_opt_set_int(s, "dstw", f->width, 0);
		av_opt_set_int(s, "dsth", f->height, 0);
		av_opt_set_int(s, "dst_format", AV_PIX_FMT_BGR24, 0);
		av_opt_set_int(s, "sws_flags", SWS_BICUBIC, 0);
		av_opt_set_int(s, "src_v_chr_pos", f->format == AV_PIX_FMT_YUV420P ? 128 : -513, 0);
		if (sws_init_context(s, NULL, NULL) < 0)
			return -1;
		c->sws_space = c->sws_range = -1;
	}
	if (f->colorspace != c->sws_space || f->color_range != c->sws_range) {
		const int *inv, *tab;
		int in_full, out_full, bri, con, sat;
		sws_getColorspaceDetails(c->sws, (int **)&inv, &in_full, (int **)&tab, &out_full, &bri, &con, &sat);
		inv = tab = yuv_coefficients(f->colorspace);
		if (f->color_range != AVCOL_RANGE_UNSPECIFIED)
			in_full = f->color_range == AVCOL_RANGE_JPEG;
		sws_setColorspaceDetails(c->sws, inv, in_full, tab, out_full, bri, con, sat);
		c->sws_space = f->colorspace;
		c->sws_range = f->color_range;
	}
	uint8_t *d[4] = {dst};
	int ls[4] = {f->width * 3};
	return sws_scale(c->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, d, ls) == f->height ? 0 : -1;
}

int lav_copy_bgr(lav_ctx *c, uint8_t *dst) {
	const AVFrame *f = c->out;
	if (c->direct)
		return convert_bgr(c, f, dst) < 0 ? fail(c, LAV_ERR_INTERNAL, "convert to bgr24", 0) : 0;
	int n = f->width * 3;
	for (int y = 0; y < f->height; y++)
		swap_rgb(dst + (int64_t)y * n, f->data[0] + (int64_t)y * f->linesize[0], n);
	return 0;
}

int lav_samples(lav_ctx *c) { return c->out->nb_samples; }

void lav_copy_s16(lav_ctx *c, int16_t *dst) {
	memcpy(dst, c->out->data[0], (size_t)c->out->nb_samples * sizeof(int16_t));
}

void lav_free(lav_ctx *c) {
	if (!c)
		return;
	sws_freeContext(c->sws);
	avfilter_graph_free(&c->vgraph);
	avfilter_graph_free(&c->agraph);
	avcodec_free_context(&c->vdec);
	avcodec_free_context(&c->adec);
	av_packet_free(&c->pkt);
	for (int i = c->qpos; i < c->qlen; i++)
		av_packet_free(&c->queue[i]);
	av_freep(&c->queue);
	av_frame_free(&c->dec);
	av_frame_free(&c->out);
	if (c->fmt)
		avformat_close_input(&c->fmt);
	if (c->avio) {
		av_freep(&c->avio->buffer);
		avio_context_free(&c->avio);
	}
	av_free(c);
}
