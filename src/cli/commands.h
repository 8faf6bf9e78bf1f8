// One function per subcommand; argv[0] is the subcommand name. Return the process exit status
// (0 ok, 1 runtime error, 2 usage error).
#ifndef SLLM_CLI_COMMANDS_H
#define SLLM_CLI_COMMANDS_H
int cmd_run(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_export(int argc, char **argv);
#endif
