/* logql_lex.h - the LogQL lexer and the parser's error reporting, shared by logql_lex.c,
 * logql_parse_log.c (log selections and pipelines) and logql_parse.c (metric expressions and
 * the query). Not part of the interface. */
#ifndef SW_LOGQL_LEX_H
#define SW_LOGQL_LEX_H

#include <stdint.h>
#include <string.h>

#include "../common/buf.h"
#include "logql.h"

enum tk {
  T_EOF, T_IDENT, T_STR, T_NUM, T_DUR, T_BYTES, T_LBRACE, T_RBRACE, T_LPAR, T_RPAR, T_LBRACK,
  T_RBRACK, T_COMMA, T_EQ, T_NEQ, T_RE, T_NRE, T_PIPE_EQ, T_PIPE_RE, T_PIPE, T_GT, T_GE, T_LT,
  T_LE, T_EQEQ, T_PLUS, T_MINUS, T_MUL, T_DIV, T_MOD, T_POW
};

struct lex {
  const char *text, *p;
  int tk;
  const char *start; /* of the current token */
  size_t len;
  struct sw_buf str; /* T_STR: the decoded string; T_IDENT: the name */
  double num;        /* T_NUM; T_DUR: seconds; T_BYTES: bytes */
  int64_t dur_ns;    /* T_DUR */
  int failed;
  char *err;
  size_t errlen;
  int depth; /* of the recursive descent: see enter() */
};

/* Reads the next token into x (tk, start, len, str, num, dur_ns). 0, or -1 after an error. */
int sw__lq_next(struct lex *x);
/* "parse error at line L, col C: ..." at `at`; only the first error is kept. Returns -1. */
int sw__lq_fail_at(struct lex *x, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "WHAT is not supported by spillway (...)": valid LogQL that spillway does not evaluate. */
int sw__lq_unsupported(struct lex *x, const char *what);
/* Loki's "syntax error: unexpected X[, expecting Y]" for the current token. */
int sw__lq_unexpected(struct lex *x, const char *expecting);
/* One more level of nesting; fails past the bound that keeps the recursion off the stack's end. */
int sw__lq_enter(struct lex *x);
/* The current token is tk (then reads the next one), else a syntax error. */
int sw__lq_expect(struct lex *x, int tk);

static inline int sw__lq_is_ident(const struct lex *x, const char *word) {
  return x->tk == T_IDENT && !strcmp(x->str.data, word);
}

#endif
