// What a training run shows and leaves behind: a progress line on stderr (step, loss, tokens/s,
// ETA), DIR/metrics.csv (one row per optimizer step, plus validation rows) and DIR/loss.svg, a line
// chart of the train and validation loss drawn from metrics.csv.
//
// metrics.csv columns:  step,tokens,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s
// The first six are deterministic for a seeded run (a resumed run reproduces them exactly); the last
// two are wall-clock measurements. Empty cells mean "not measured at this step" (val_loss is only
// filled on evaluation steps; an evaluation-only row has an empty loss).
#ifndef SLLM_TRAIN_REPORT_H
#define SLLM_TRAIN_REPORT_H
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t step;          // optimizer steps done (1-based after the first update)
    int64_t tokens;        // target tokens seen so far
    double loss;           // NAN: none (evaluation-only row)
    double val_loss;       // NAN: not evaluated at this step
    double lr, grad_norm;  // NAN: none
    double tokens_per_s, elapsed_s;
} report_row;

typedef struct train_report train_report;

// Opens DIR/metrics.csv. resume_step < 0: a fresh file (header only). resume_step >= 0: keeps the
// rows of an earlier run whose step <= resume_step and drops later ones (written after the checkpoint
// the run resumes from), so the file continues exactly where the checkpoint is.
// total_steps: for the progress bar and ETA. progress: draw the bar on stderr.
int report_open(const char *dir, int64_t resume_step, int64_t total_steps, bool progress, train_report **out);
// Appends a row to metrics.csv (flushed) and redraws the progress line.
int report_add(train_report *r, const report_row *row);
// Ends the progress line and writes DIR/loss.svg from metrics.csv.
int report_close(train_report *r);
void report_free(train_report *r);

// Draws the loss curves of a metrics.csv as an SVG line chart (axes with ticks, train loss and
// validation loss when present, a legend). Reads the file by its header, so column order may vary.
int report_plot_svg(const char *csv_path, const char *svg_path, const char *title);
// "1:02:03" / "4:05" for seconds (negative or non-finite: "?").
void report_fmt_duration(double s, char *buf, int n);
#endif
