// Progress line, metrics.csv and the loss-curve SVG of a training run.
//
// metrics.csv is our own all-numeric file (no quoting, no text cells), so it is read back with a few
// lines of strtod rather than a CSV library. The SVG is written by hand: a chart of two polylines
// needs no plotting library, and the output stays a small, diffable text file.
#include "train/report.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/error.h"
#include "base/fileio.h"

static const char CSV_HEADER[] = "step,tokens,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n";

struct train_report {
    char *dir, *csv_path;
    FILE *csv;
    int64_t total_steps;
    bool progress, tty, drawn;
    int64_t last_line_step;
};

void report_fmt_duration(double s, char *buf, int n) {
    if (!isfinite(s) || s < 0) { snprintf(buf, (size_t)n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, (size_t)n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, (size_t)n, "%ld:%02ld", t / 60, t % 60);
}

static void put_num(FILE *f, double v, bool comma) {
    if (comma) fputc(',', f);
    if (isfinite(v)) fprintf(f, "%.9g", v);
}

// The step of a data row (first cell), or -1 for the header / a malformed line.
static int64_t row_step(const char *line) {
    char *end;
    errno = 0;
    long long v = strtoll(line, &end, 10);
    if (end == line || *end != ',' || errno) return -1;
    return v;
}

int report_open(const char *dir, int64_t resume_step, int64_t total_steps, bool progress, train_report **out) {
    *out = NULL;
    int rc = fileio_mkdirs(dir);
    if (rc) return rc;
    train_report *r = calloc(1, sizeof *r);
    if (!r) return err_set(SLLM_ERR_NOMEM, "report: out of memory");
    r->dir = strdup(dir);
    size_t n = strlen(dir) + 16;
    r->csv_path = malloc(n);
    if (!r->dir || !r->csv_path) { report_free(r); return err_set(SLLM_ERR_NOMEM, "report: out of memory"); }
    snprintf(r->csv_path, n, "%s/metrics.csv", dir);
    r->total_steps = total_steps;
    r->progress = progress;
    r->tty = isatty(STDERR_FILENO);
    r->last_line_step = -1;

    // Keep the rows an earlier run wrote up to the checkpoint, then rewrite the file atomically.
    char *kept = NULL; size_t kept_len = 0;
    if (resume_step >= 0) {
        char *old = NULL; size_t old_len = 0;
        if (fileio_read_all(r->csv_path, &old, &old_len) == SLLM_OK) {
            kept = malloc(old_len + sizeof CSV_HEADER);
            if (!kept) { free(old); report_free(r); return err_set(SLLM_ERR_NOMEM, "report: out of memory"); }
            memcpy(kept, CSV_HEADER, sizeof CSV_HEADER - 1);
            kept_len = sizeof CSV_HEADER - 1;
            for (char *line = old; line < old + old_len;) {
                char *nl = memchr(line, '\n', (size_t)(old + old_len - line));
                if (!nl) break;   // a torn last line (killed mid-write) is dropped
                int64_t st = row_step(line);
                if (st >= 0 && st <= resume_step) {
                    memcpy(kept + kept_len, line, (size_t)(nl - line + 1));
                    kept_len += (size_t)(nl - line + 1);
                }
                line = nl + 1;
            }
            free(old);
        }
        err_clear();
    }
    if (kept) {
        rc = fileio_write_atomic(r->csv_path, kept, kept_len);
        free(kept);
        if (rc) { report_free(r); return rc; }
        r->csv = fopen(r->csv_path, "a");
    } else {
        r->csv = fopen(r->csv_path, "w");
        if (r->csv) fputs(CSV_HEADER, r->csv);
    }
    if (!r->csv) {
        int e = errno;
        rc = err_set(SLLM_ERR_IO, "%s: cannot write: %s", r->csv_path, strerror(e));
        report_free(r);
        return rc;
    }
    fflush(r->csv);
    *out = r;
    return SLLM_OK;
}

static void draw_progress(train_report *r, const report_row *row) {
    if (!r->progress || isnan(row->loss)) return;
    int64_t total = r->total_steps > 0 ? r->total_steps : row->step;
    // Not a terminal (logs, tests): a plain line every 5% of the run instead of a redrawn bar.
    if (!r->tty) {
        int64_t every = total / 20 > 0 ? total / 20 : 1;
        if (row->step % every != 0 && row->step != total && row->step != 1) return;
    }
    double frac = total > 0 ? (double)row->step / (double)total : 0;
    if (frac > 1) frac = 1;
    char bar[32];
    int w = 24, filled = (int)(frac * w + 0.5);
    for (int i = 0; i < w; i++) bar[i] = i < filled ? '#' : '.';
    bar[w] = 0;
    double eta = row->step > 0 ? row->elapsed_s / (double)row->step * (double)(total - row->step) : NAN;
    char eta_s[32], el_s[32];
    report_fmt_duration(eta, eta_s, sizeof eta_s);
    report_fmt_duration(row->elapsed_s, el_s, sizeof el_s);
    fprintf(stderr, "%s[%s] step %lld/%lld  loss %.4f", r->tty ? "\r" : "", bar, (long long)row->step,
            (long long)total, row->loss);
    if (!isnan(row->val_loss)) fprintf(stderr, "  val %.4f", row->val_loss);
    fprintf(stderr, "  lr %.2e  %.0f tok/s  %s elapsed  ETA %s%s", row->lr, row->tokens_per_s, el_s, eta_s,
            r->tty ? "   " : "\n");
    fflush(stderr);
    r->drawn = r->tty;
}

int report_add(train_report *r, const report_row *row) {
    fprintf(r->csv, "%lld,%lld", (long long)row->step, (long long)row->tokens);
    put_num(r->csv, row->loss, true);
    put_num(r->csv, row->val_loss, true);
    put_num(r->csv, row->lr, true);
    put_num(r->csv, row->grad_norm, true);
    fprintf(r->csv, ",%.1f,%.3f\n", row->tokens_per_s, row->elapsed_s);
    if (fflush(r->csv) != 0 || ferror(r->csv))
        return err_set(SLLM_ERR_IO, "%s: write failed: %s", r->csv_path, strerror(errno));
    draw_progress(r, row);
    if (r->progress && !isnan(row->val_loss) && isnan(row->loss)) {
        if (r->drawn) fputc('\n', stderr);
        fprintf(stderr, "step %lld: validation loss %.4f\n", (long long)row->step, row->val_loss);
        r->drawn = false;
    }
    return SLLM_OK;
}

int report_close(train_report *r) {
    if (r->drawn) { fputc('\n', stderr); r->drawn = false; }
    if (r->csv) { fclose(r->csv); r->csv = NULL; }
    size_t n = strlen(r->dir) + 16;
    char *svg = malloc(n);
    if (!svg) return err_set(SLLM_ERR_NOMEM, "report: out of memory");
    snprintf(svg, n, "%s/loss.svg", r->dir);
    int rc = report_plot_svg(r->csv_path, svg, "training loss");
    free(svg);
    return rc;
}

void report_free(train_report *r) {
    if (!r) return;
    if (r->csv) fclose(r->csv);
    free(r->dir);
    free(r->csv_path);
    free(r);
}

// ---- SVG chart ----

typedef struct { double x, y; } pt;
typedef struct { pt *p; int n, cap; } series;

static int series_push(series *s, double x, double y) {
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        pt *np = realloc(s->p, (size_t)cap * sizeof *np);
        if (!np) return SLLM_ERR_NOMEM;
        s->p = np; s->cap = cap;
    }
    s->p[s->n++] = (pt){x, y};
    return SLLM_OK;
}

// A "nice" tick spacing (1, 2 or 5 times a power of ten) giving about `want` ticks over `range`.
static double nice_step(double range, int want) {
    if (!(range > 0)) return 1;
    double raw = range / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void polyline(FILE *f, const series *s, double (*sx)(double, const double *), double (*sy)(double, const double *),
                     const double *g, const char *color) {
    if (s->n == 0) return;
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"", color);
    for (int i = 0; i < s->n; i++) fprintf(f, "%s%.1f,%.1f", i ? " " : "", sx(s->p[i].x, g), sy(s->p[i].y, g));
    fputs("\"/>\n", f);
}

// g: {x0, x1, y0, y1, left, top, width, height}
static double map_x(double x, const double *g) { return g[4] + (x - g[0]) / (g[1] - g[0]) * g[6]; }
static double map_y(double y, const double *g) { return g[5] + g[7] - (y - g[2]) / (g[3] - g[2]) * g[7]; }

int report_plot_svg(const char *csv_path, const char *svg_path, const char *title) {
    char *text = NULL; size_t len = 0;
    int rc = fileio_read_all(csv_path, &text, &len);
    if (rc) return rc;
    // column indexes from the header
    int c_step = -1, c_loss = -1, c_val = -1, ncol = 0;
    char *nl = strchr(text, '\n');
    if (!nl) { free(text); return err_set(SLLM_ERR_FORMAT, "%s: no header line", csv_path); }
    *nl = 0;
    for (char *tok = text, *next; tok; tok = next, ncol++) {
        next = strchr(tok, ',');
        if (next) *next++ = 0;
        if (!strcmp(tok, "step")) c_step = ncol;
        else if (!strcmp(tok, "loss")) c_loss = ncol;
        else if (!strcmp(tok, "val_loss")) c_val = ncol;
    }
    if (c_step < 0 || c_loss < 0) {
        free(text);
        return err_set(SLLM_ERR_FORMAT, "%s: header has no 'step' and 'loss' columns", csv_path);
    }
    series tr = {0}, va = {0};
    int line_no = 1;
    for (char *line = nl + 1; line < text + len; line_no++) {
        char *e = strchr(line, '\n');
        if (e) *e = 0;
        double step = NAN, loss = NAN, val = NAN;
        int col = 0;
        for (char *c = line; ; col++) {
            char *comma = strchr(c, ',');
            if (comma) *comma = 0;
            if (*c) {
                char *end;
                double v = strtod(c, &end);
                if (*end) {
                    err_set(SLLM_ERR_FORMAT, "%s:%d: column %d: '%s' is not a number", csv_path, line_no + 1, col + 1, c);
                    free(text); free(tr.p); free(va.p);
                    return SLLM_ERR_FORMAT;
                }
                if (col == c_step) step = v;
                else if (col == c_loss) loss = v;
                else if (col == c_val) val = v;
            }
            if (!comma) break;
            c = comma + 1;
        }
        if (isfinite(step)) {
            if (isfinite(loss) && series_push(&tr, step, loss)) rc = SLLM_ERR_NOMEM;
            if (isfinite(val) && series_push(&va, step, val)) rc = SLLM_ERR_NOMEM;
        }
        if (!e) break;
        line = e + 1;
    }
    free(text);
    if (rc) { free(tr.p); free(va.p); return err_set(rc, "report: out of memory"); }

    // data ranges; the y axis starts at 0 when the losses are not far above it
    double x0 = 0, x1 = 1, y0 = INFINITY, y1 = -INFINITY;
    const series *all[2] = {&tr, &va};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < all[k]->n; i++) {
            if (all[k]->p[i].x > x1) x1 = all[k]->p[i].x;
            if (all[k]->p[i].y < y0) y0 = all[k]->p[i].y;
            if (all[k]->p[i].y > y1) y1 = all[k]->p[i].y;
        }
    if (!isfinite(y0)) { y0 = 0; y1 = 1; }
    if (y0 >= 0 && y0 < 0.5 * y1) y0 = 0;
    if (y1 - y0 < 1e-9) { y1 = y0 + 1; }
    double ys = nice_step(y1 - y0, 6), xs = nice_step(x1 - x0, 8);
    y0 = floor(y0 / ys) * ys; y1 = ceil(y1 / ys) * ys;
    x1 = ceil(x1 / xs) * xs;
    const double W = 720, H = 420, left = 64, top = 40, pw = W - left - 24, ph = H - top - 56;
    double g[8] = {x0, x1, y0, y1, left, top, pw, ph};

    FILE *f = fopen(svg_path, "w");
    if (!f) { free(tr.p); free(va.p); return err_set(SLLM_ERR_IO, "%s: cannot write: %s", svg_path, strerror(errno)); }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.0f\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">", W / 2);
    xml_text(f, title ? title : "loss");
    fputs("</text>\n", f);
    // grid + ticks
    for (double y = y0; y <= y1 + ys * 1e-6; y += ys) {
        double py = map_y(y, g);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, py, left + pw, py);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", left - 6, py + 4, fabs(y) < ys * 1e-6 ? 0 : y);
    }
    for (double x = x0; x <= x1 + xs * 1e-6; x += xs) {
        double px = map_x(x, g);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", px, top, px, top + ph);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", px, top + ph + 16, x);
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", left, top + ph, left + pw, top + ph);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", left, top, left, top + ph);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">optimizer step</text>\n", left + pw / 2, H - 14);
    fprintf(f, "<text x=\"16\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.1f)\">loss</text>\n",
            top + ph / 2, top + ph / 2);
    polyline(f, &tr, map_x, map_y, g, "#1f77b4");
    polyline(f, &va, map_x, map_y, g, "#ff7f0e");
    for (int i = 0; i < va.n; i++)
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#ff7f0e\"/>\n", map_x(va.p[i].x, g), map_y(va.p[i].y, g));
    // legend
    double lx = left + pw - 150, ly = top + 12;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
               "<text x=\"%.1f\" y=\"%.1f\">train loss (%d)</text>\n", lx, ly, lx + 20, ly, lx + 26, ly + 4, tr.n);
    if (va.n)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ff7f0e\" stroke-width=\"2\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\">validation loss (%d)</text>\n", lx, ly + 18, lx + 20, ly + 18, lx + 26,
                ly + 22, va.n);
    fputs("</svg>\n", f);
    free(tr.p); free(va.p);
    if (fclose(f) != 0) return err_set(SLLM_ERR_IO, "%s: write failed", svg_path);
    return SLLM_OK;
}
