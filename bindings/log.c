// Native log sink: llama.cpp and ggml report why a load failed only through
// their log callback, so errors and warnings are kept here for the Go side
// to attach to the error it returns. Everything is printed to stderr only
// when RAGTUNE_NATIVE_LOG is set.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml.h"

#define RAGTUNE_LOG_KEEP 2048

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_kept[RAGTUNE_LOG_KEEP];
static size_t log_len;
static int log_keep_cont;

void ragtune_log_sink(enum ggml_log_level level, const char *text, void *user_data) {
	(void) user_data;
	static int verbose = -1;
	if (verbose < 0) {
		verbose = getenv("RAGTUNE_NATIVE_LOG") != NULL;
	}
	if (verbose) {
		fputs(text, stderr);
	}
	pthread_mutex_lock(&log_mu);
	int keep = level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN ||
		(level == GGML_LOG_LEVEL_CONT && log_keep_cont);
	if (level != GGML_LOG_LEVEL_CONT) {
		log_keep_cont = keep;
	}
	if (keep) {
		size_t n = strlen(text);
		if (n >= RAGTUNE_LOG_KEEP) {
			text += n - (RAGTUNE_LOG_KEEP - 1);
			n = RAGTUNE_LOG_KEEP - 1;
		}
		if (log_len + n >= RAGTUNE_LOG_KEEP) {
			size_t drop = log_len + n - (RAGTUNE_LOG_KEEP - 1);
			memmove(log_kept, log_kept + drop, log_len - drop);
			log_len -= drop;
		}
		memcpy(log_kept + log_len, text, n);
		log_len += n;
		log_kept[log_len] = 0;
	}
	pthread_mutex_unlock(&log_mu);
}

// ragtune_log_take copies the kept messages into buf and forgets them.
size_t ragtune_log_take(char *buf, size_t cap) {
	pthread_mutex_lock(&log_mu);
	size_t n = log_len < cap - 1 ? log_len : cap - 1;
	memcpy(buf, log_kept + log_len - n, n);
	buf[n] = 0;
	log_len = 0;
	log_kept[0] = 0;
	pthread_mutex_unlock(&log_mu);
	return n;
}
