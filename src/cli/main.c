// sllm — one program, thin subcommands over libsllm.
#include <stdio.h>
#include <string.h>
#include "sllm.h"
#include "cli/commands.h"
#include "cli/common.h"

typedef struct { const char *name; int (*fn)(int, char **); const char *help; } command;

static const command COMMANDS[] = {
    {"run", cmd_run, "generate text from a prompt (streams; --probs K --json for top-K per step)"},
    {"info", cmd_info, "architecture, parameters, dtype mix, memory for weights + KV cache"},
    {"tokenize", cmd_tokenize, "print token ids and pieces of a text"},
    {"quantize", cmd_quantize, "convert a model's weights to q8_0, q4_0, q4_k, q6_k, ... (GGUF out)"},
    {"init", cmd_init, "create a randomly initialized model of a named real shape"},
    {"bench", cmd_bench, "prefill and decode tokens/s (like llama-bench)"},
    {"perplexity", cmd_perplexity, "perplexity of a model over a text file"},
    {"chat", cmd_chat, "chat with a model's own template (interactive, or one JSON reply; tools, schemas)"},
    {"template", cmd_template, "print the prompt a chat template renders for a conversation"},
    {"train", cmd_train, "continued pretraining (cpt) or instruction tuning (sft), LoRA or full"},
    {"eval", cmd_eval, "compare a base model and LoRA-tuned model on Q/A data (loss, exact match)"},
    {"export", cmd_export, "merge LoRA adapters into a model (GGUF or HF), or convert an adapter"},
};
#define N_COMMANDS (int)(sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f) {
    fprintf(f, "sllm %s — run, serve and tune small LLMs\n\nusage: sllm COMMAND [options]   (sllm COMMAND --help for details)\n\ncommands:\n",
            sllm_version());
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(f, "\nMODEL is a .gguf file or a Hugging Face model directory (config.json + *.safetensors).\n");
    fprintf(f, "\nglobal options (any command that runs a model):\n"
               "  --kv-type f16|f32|q8_0  KV cache dtype (default f16, as llama.cpp: half the memory of f32\n"
               "                      and faster decode at long contexts; f32 is exact to the model's f32\n"
               "                      arithmetic; q8_0 half of f16 again, as llama.cpp's -ctk/-ctv q8_0)\n");
}

int main(int argc, char **argv) {
    int rc = cli_global_flags(&argc, argv);
    if (rc) return rc;
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) { printf("sllm %s\n", sllm_version()); return 0; }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sllm: unknown command '%s' (see sllm --help)\n", argv[1]);
    return 2;
}
