// sllm train cpt|sft: continued pretraining and instruction tuning, LoRA or full (train/trainer.h).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"
#include "cli/commands.h"
#include "train/trainer.h"

static const char TRAIN_HELP[] =
    "usage: sllm train cpt|sft --model BASE --data FILE[:RATIO] [--data ...] --out DIR [options]\n"
    "\n"
    "  cpt  continued pretraining on raw text (.txt: blank-line separated documents; .jsonl {\"text\"})\n"
    "  sft  instruction tuning on conversations (.jsonl/.json: messages, conversations, prompt/completion,\n"
    "       instruction/input/output; .csv question,answer). Rendered with the model's own chat template\n"
    "       (ChatML when it has none); the loss counts only assistant tokens and their end-of-turn marker.\n"
    "\n"
    "Outputs in DIR: adapter/ (PEFT) + adapter.gguf (llama.cpp LoRA), or with --full model.gguf + hf/;\n"
    "metrics.csv, loss.svg, checkpoints/ (with --save-every).\n"
    "\n"
    "  --model BASE            .gguf file or Hugging Face directory (required)\n"
    "  --data FILE[:RATIO]     training data; repeat to mix files by RATIO (default 1)\n"
    "  --out DIR               output directory (required)\n"
    "  --lora SPEC             LoRA (default): r=16,alpha=32,dropout=0.05,targets=q,k,v,o,gate,up,down[,rslora]\n"
    "  --full                  full fine-tuning (f32 master weights) instead of LoRA\n"
    "  --steps N | --epochs E  length of the run (default: 1 epoch)\n"
    "  --batch B               rows per micro-batch (default 4)\n"
    "  --seq T                 tokens per row (default 256)\n"
    "  --grad-accum K          micro-batches per optimizer step (default 1)\n"
    "  --lr LR --min-lr LR     peak / final learning rate (default 2e-4 / 0)\n"
    "  --warmup N              warmup steps (default 0)\n"
    "  --schedule S            cosine | linear | constant (default cosine)\n"
    "  --weight-decay W        AdamW decoupled weight decay (default 0)\n"
    "  --clip C                clip the global gradient norm (default 1.0; 0 = off)\n"
    "  --seed S                data order, LoRA init and dropout (default 42)\n"
    "  --val-frac F            share of each file held out for validation (default 0.05)\n"
    "  --eval-every N          validation loss every N steps (default: start and end)\n"
    "  --save-every N          checkpoint every N steps\n"
    "  --resume                continue from the newest checkpoint in DIR (same options)\n"
    "  --stop-after N          stop after N steps of this run, saving a checkpoint (as an interrupt does)\n"
    "  --checkpointing         gradient checkpointing: recompute layers in the backward (less memory)\n"
    "  --pack                  SFT: pack several conversations per row\n"
    "  --system TEXT           SFT: system message for conversations without one\n"
    "  --chat-template FILE    SFT: Jinja chat template to use instead of the model's own\n"
    "  --on-bad-line skip|fail malformed data lines: warn with FILE:LINE and skip (default), or stop\n"
    "  -t, --threads N         threads (default: all cores)\n"
    "  --json                  end with one JSON summary line on stdout\n"
    "  --dry-run               print the memory plan (weights, gradients, optimizer, activations) and stop\n"
    "  --quiet                 no progress or informational output\n";

int cmd_train(int argc, char **argv) {
    if (argc < 2 || arg_is_help(argv[1])) {
        fputs(TRAIN_HELP, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    trainer_opts o;
    trainer_opts_default(&o);
    if (!strcmp(argv[1], "cpt")) o.task = TRAINER_CPT;
    else if (!strcmp(argv[1], "sft")) o.task = TRAINER_SFT;
    else {
        fprintf(stderr, "sllm train: unknown task '%s' (use cpt or sft; see sllm train --help)\n", argv[1]);
        return 2;
    }
    trainer_data *data = calloc((size_t)argc, sizeof *data);
    char **paths = calloc((size_t)argc, sizeof *paths);
    int n_data = 0, rc = 2;
    bool json = false, lora_given = false;
    if (!data || !paths) { fprintf(stderr, "sllm train: out of memory\n"); goto out; }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t n;
        double d;
        if (arg_is_help(a)) { fputs(TRAIN_HELP, stdout); rc = 0; goto out; }
#define VAL() do { if (!(v = arg_value("train", argc, argv, &i))) goto out; } while (0)
#define INT(lo, hi) do { VAL(); if (!arg_int("train", a, v, lo, hi, &n)) goto out; } while (0)
#define FLT(lo, hi) do { VAL(); if (!arg_float("train", a, v, lo, hi, &d)) goto out; } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); o.model_path = v; }
        else if (!strcmp(a, "--data")) {
            VAL();
            // FILE:RATIO when the part after the last ':' is a number
            const char *colon = strrchr(v, ':');
            double ratio = 1;
            size_t len = strlen(v);
            if (colon && colon[1]) {
                char *end;
                double r = strtod(colon + 1, &end);
                if (!*end) {
                    if (!(r > 0) || !isfinite(r)) { fprintf(stderr, "sllm train: --data %s: ratio must be > 0\n", v); goto out; }
                    ratio = r;
                    len = (size_t)(colon - v);
                }
            }
            paths[n_data] = strndup(v, len);
            data[n_data] = (trainer_data){.path = paths[n_data], .ratio = ratio};
            n_data++;
        }
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) { VAL(); o.out_dir = v; }
        else if (!strcmp(a, "--lora")) {
            VAL();
            if (trainer_parse_lora(v, &o.lora)) { fprintf(stderr, "sllm train: %s\n", sllm_last_error()); goto out; }
            lora_given = true;
        }
        else if (!strcmp(a, "--full")) o.full = true;
        else if (!strcmp(a, "--steps")) { INT(1, INT64_MAX / 2); o.steps = n; }
        else if (!strcmp(a, "--epochs")) { FLT(1e-6, 1e6); o.epochs = d; }
        else if (!strcmp(a, "--batch")) { INT(1, 1 << 16); o.batch = (int)n; }
        else if (!strcmp(a, "--seq")) { INT(2, 1 << 20); o.seq = (int)n; }
        else if (!strcmp(a, "--grad-accum")) { INT(1, 1 << 16); o.grad_accum = (int)n; }
        else if (!strcmp(a, "--lr")) { FLT(0, 10); o.lr = d; }
        else if (!strcmp(a, "--min-lr")) { FLT(0, 10); o.min_lr = d; }
        else if (!strcmp(a, "--warmup")) { INT(0, INT64_MAX / 2); o.warmup = n; }
        else if (!strcmp(a, "--schedule")) {
            VAL();
            if (sched_parse_kind(v, &o.schedule)) { fprintf(stderr, "sllm train: --schedule: %s\n", sllm_last_error()); goto out; }
        }
        else if (!strcmp(a, "--weight-decay")) { FLT(0, 10); o.weight_decay = d; }
        else if (!strcmp(a, "--clip")) { FLT(0, 1e9); o.clip = d; }
        else if (!strcmp(a, "--seed")) { INT(0, INT64_MAX); o.seed = (uint64_t)n; }
        else if (!strcmp(a, "--val-frac")) { FLT(0, 0.99); o.val_frac = d; }
        else if (!strcmp(a, "--eval-every")) { INT(0, INT64_MAX / 2); o.eval_every = n; }
        else if (!strcmp(a, "--save-every")) { INT(0, INT64_MAX / 2); o.save_every = n; }
        else if (!strcmp(a, "--stop-after")) { INT(1, INT64_MAX / 2); o.stop_after = n; }
        else if (!strcmp(a, "--resume")) o.resume = true;
        else if (!strcmp(a, "--checkpointing")) o.checkpointing = true;
        else if (!strcmp(a, "--pack")) o.pack_sft = true;
        else if (!strcmp(a, "--system")) { VAL(); o.system_prompt = v; }
        else if (!strcmp(a, "--chat-template")) { VAL(); o.chat_template_file = v; }
        else if (!strcmp(a, "--on-bad-line")) {
            VAL();
            if (!strcmp(v, "skip")) o.fail_on_bad_line = false;
            else if (!strcmp(v, "fail")) o.fail_on_bad_line = true;
            else { fprintf(stderr, "sllm train: --on-bad-line: '%s' (use skip or fail)\n", v); goto out; }
        }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { INT(0, 1024); o.threads = (int)n; }
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--dry-run")) o.dry_run = true;
        else if (!strcmp(a, "--quiet")) o.quiet = true;
        else { rc = arg_unknown("train", a); goto out; }
#undef VAL
#undef INT
#undef FLT
    }
    if (o.full && lora_given) { fprintf(stderr, "sllm train: --full and --lora exclude each other\n"); goto out; }
    if (!o.model_path || !o.out_dir || (n_data == 0 && !o.dry_run)) {
        fprintf(stderr, "sllm train: need --model BASE, --data FILE and --out DIR (see sllm train --help)\n");
        goto out;
    }
    o.data = data;
    o.n_data = n_data;
    trainer_result res;
    if (trainer_run(&o, &res) != SLLM_OK) {
        fprintf(stderr, "sllm train: %s\n", sllm_last_error());
        rc = 1;
        goto out;
    }
    if (json || o.dry_run) {
        if (json) {
            char *s = trainer_result_json(&o, &res);
            if (s) { puts(s); free(s); }
        }
    } else if (!o.quiet) {
        fprintf(stderr, "done: %lld steps, %lld tokens, %.0f tokens/s, train loss %.4f", (long long)res.steps,
                (long long)res.tokens, res.tokens_per_s, res.train_loss);
        if (!isnan(res.val_loss)) fprintf(stderr, ", validation loss %.4f (was %.4f)", res.val_loss, res.val_loss_initial);
        fprintf(stderr, ", peak RSS %.1f MiB\n", res.peak_rss_kb / 1024.0);
    }
    rc = 0;
out:
    for (int i = 0; paths && i < n_data; i++) free(paths[i]);
    free(paths);
    free(data);
    return rc;
}
