/* The `loom` command's subcommands. Each takes the arguments after its own
 * name and returns the process exit status. */
#ifndef LOOM_CLI_CLI_H
#define LOOM_CLI_CLI_H

int loom__cmd_serve(int argc, char **argv);
int loom__cmd_install_plugin(int argc, char **argv);
int loom__cmd_plugins(int argc, char **argv);
int loom__cmd_fetch(int argc, char **argv);
int loom__cmd_ws(int argc, char **argv);
int loom__cmd_new_plugin(int argc, char **argv);
int loom__cmd_check_plugin(int argc, char **argv);
int loom__cmd_status(int argc, char **argv);
int loom__cmd_check_config(int argc, char **argv);
int loom__cmd_dev_cert(int argc, char **argv);

#endif
