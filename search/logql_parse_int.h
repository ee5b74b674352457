/* logql_parse_int.h - what logql_parse.c (metric expressions, the query) takes from
 * logql_parse_log.c (log selections). Not part of the interface. */
#ifndef SW_LOGQL_PARSE_INT_H
#define SW_LOGQL_PARSE_INT_H

#include "logql_lex.h"

/* `{a="b", c=~"d"}` into lg->sel (the current token is `{`). */
int sw__lq_parse_selector(struct lex *x, struct sw_lq_log *lg);
/* The stages after a selector, up to the first token that cannot continue a pipeline. */
int sw__lq_parse_pipeline(struct lex *x, struct sw_lq_log *lg);
/* A whole log query: selector and pipeline. */
int sw__lq_parse_log(struct lex *x, struct sw_lq_query *q);
/* Frees lg's selector and stages (not lg itself). */
void sw__lq_log_free(struct sw_lq_log *lg);

#endif
