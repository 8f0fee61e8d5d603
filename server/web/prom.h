/* prom.h - GET /metrics (prom.c). */
#ifndef SATURND_PROM_H
#define SATURND_PROM_H

#include "views.h"

/* Appends the /metrics page. Errors are the buffer's (strbuf_error). */
void prom_render(struct coord *c, struct strbuf *b);

#endif
