/* The progress bar of block-wise transfers (see progress.h).
 *
 *   ==========>           45%  45.0 KiB of 100.0 KiB  45 blocks  1.2 MiB/s
 *
 * It is redrawn at most ten times a second, with a carriage return and
 * an erase-to-end-of-line, and wiped when the transfer ends so that what
 * follows on the terminal starts on a clean line. A single-message
 * transfer never shows one.
 */
#include <string.h>

#include "output.h"
#include "progress.h"

enum { REDRAW_MS = 100, BAR = 20 };

void cli_progress_start(struct cli_progress *p, FILE *f)
{
  memset(p, 0, sizeof *p);
  p->f = f;
  p->t0 = cli_now_ms();
}

static void size_text(uint64_t n, char *buf, size_t cap)
{
  if (n < 1024)
    snprintf(buf, cap, "%llu B", (unsigned long long)n);
  else if (n < 1024 * 1024)
    snprintf(buf, cap, "%.1f KiB", (double)n / 1024);
  else
    snprintf(buf, cap, "%.1f MiB", (double)n / (1024 * 1024));
}

static void draw(struct cli_progress *p, uint64_t now)
{
  char done[32], all[32], rate[32], bar[BAR + 1];
  size_text(p->bytes, done, sizeof done);
  double secs = (double)(now - p->t0) / 1000.0;
  size_text(secs > 0 ? (uint64_t)((double)p->bytes / secs) : 0, rate,
            sizeof rate);
  fputc('\r', p->f);
  if (p->total && p->bytes <= p->total) {
    unsigned fill = (unsigned)(p->bytes * BAR / p->total);
    memset(bar, '=', fill);
    memset(bar + fill, ' ', BAR - fill);
    if (fill < BAR)
      bar[fill] = '>';
    bar[BAR] = '\0';
    size_text(p->total, all, sizeof all);
    fprintf(p->f, "[%s] %3u%%  %s of %s", bar,
            (unsigned)(p->bytes * 100 / p->total), done, all);
  } else {
    fprintf(p->f, "%s", done);
  }
  fprintf(p->f, "  %u blocks  %s/s\033[K", p->blocks, rate);
  fflush(p->f);
  p->drawn = true;
  p->t_draw = now;
}

void cli_progress_msg(struct cli_progress *p, bool sent, const struct ck_msg *m)
{
  if (!p->f)
    return;
  uint32_t v, size;
  struct ck_block b;
  bool counted = false;
  if (sent) {
    if (ck_msg_opt_uint(m, CK_OPT_BLOCK1, &v) == 0 &&
        ck_block_decode(v, &b) == 0 && m->payload_len) {
      p->up_num = b.num;
      p->up_len = m->payload_len;
      p->up_pending = true;
      if (ck_msg_opt_uint(m, CK_OPT_SIZE1, &size) == 0)
        p->total = size;
    }
    return;
  }
  if (ck_msg_opt_uint(m, CK_OPT_BLOCK2, &v) == 0 &&
      ck_block_decode(v, &b) == 0 && (b.more || b.num > 0)) {
    if (b.num == 0)
      p->bytes = p->blocks = 0;
    if (ck_msg_opt_uint(m, CK_OPT_SIZE2, &size) == 0)
      p->total = size;
    p->bytes += m->payload_len;
    p->blocks++;
    counted = true;
  }
  /* An upload block counts when the server acknowledges it. */
  if (p->up_pending && ck_msg_opt_uint(m, CK_OPT_BLOCK1, &v) == 0 &&
      ck_block_decode(v, &b) == 0 && b.num == p->up_num) {
    p->bytes += p->up_len;
    p->blocks++;
    p->up_pending = false;
    counted = true;
  }
  uint64_t now = cli_now_ms();
  if (counted && p->blocks > 1 && now - p->t_draw >= REDRAW_MS)
    draw(p, now);
}

void cli_progress_end(struct cli_progress *p)
{
  if (p->f && p->drawn) {
    fputs("\r\033[K", p->f);
    fflush(p->f);
  }
  p->drawn = false;
}
