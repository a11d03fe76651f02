/* eng_log.h - levelled logging to stderr (part of the shared runtime, see eng_util.h). */
#ifndef ENG_LOG_H
#define ENG_LOG_H

/* ---- logging -------------------------------------------------------------- */
typedef enum { ENG_LOG_ERROR = 0, ENG_LOG_WARN = 1, ENG_LOG_INFO = 2, ENG_LOG_DEBUG = 3 } eng_log_level;
void eng_log_set_level(eng_log_level lvl);
eng_log_level eng_log_get_level(void);
/* Writes "rlprice: <level>: message\n" to stderr when lvl <= current level. */
void eng_log(eng_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ENG_ERROR(...) eng_log(ENG_LOG_ERROR, __VA_ARGS__)
#define ENG_WARN(...) eng_log(ENG_LOG_WARN, __VA_ARGS__)
#define ENG_INFO(...) eng_log(ENG_LOG_INFO, __VA_ARGS__)
#define ENG_DEBUG(...) eng_log(ENG_LOG_DEBUG, __VA_ARGS__)

#endif
